// Package rdma finds RDMA devices (github.com/Mellanox/rdmamap, sysfs) and
// loads libibverbs.so.1 at run time with dlopen, as go-nvml loads NVML: the
// build needs no RDMA headers or libraries, and a machine without them gets
// a clear error, not a crash.
//
// What works today: Load (dlopen + symbol lookup), DeviceNames and Probe
// (ibv_get_device_list / ibv_open_device / ibv_close_device through the
// loaded library), Devices (sysfs: RDMA devices and their netdevs and
// addresses), and NetdevTCP, a collective.TCPTransport bound to the RDMA
// NIC's netdev so traffic stays on the RDMA fabric (RoCE) without verbs.
//
// What does not exist yet: a verbs data path (protection domain, completion
// queue, RC queue pairs, registered memory, post/poll). ibv_post_send and
// ibv_poll_cq are inline functions of verbs.h that jump through the
// provider's ops table, so calling them without headers means mirroring
// struct layouts; that is not done blind. None of this package has run
// against real RDMA hardware: the project's machines have no RDMA NIC, and
// the tests only check the absent-library and no-device paths.
package rdma
