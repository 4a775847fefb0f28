// Package rdma finds RDMA devices (github.com/Mellanox/rdmamap, sysfs),
// loads libibverbs.so.1 at run time with dlopen, as go-nvml loads NVML, and
// implements collective.Transport over RDMA verbs. The build needs no RDMA
// headers or libraries; a machine without them gets an error wrapping
// ErrNoLibrary or ErrNoDevice, not a crash.
//
// What it has:
//   - Load, DeviceNames, Probe: dlopen + dlsym (IBVERBS_1.1 symbols),
//     ibv_get_device_list / ibv_open_device through the loaded library.
//   - Devices (sysfs: RDMA devices, their netdevs and addresses) and
//     NetdevTCP, a collective.TCPTransport bound to the RDMA NIC's netdev.
//   - Transport ("rdma"): one RC queue pair per (peer, channel); each
//     direction writes chunks with RDMA WRITE_WITH_IMM into a registered
//     ring of the receiver's, with credits written back into the sender's
//     memory; connection setup and peer-close detection over a TCP side
//     channel; RoCE v2 GID chosen from the netdev's IPv4 address. Before a
//     connection is used, Connect probes it (a known pattern there and back
//     over the queue pair) and both sides exchange a verdict over the side
//     channel, so both fail alike, with collective.ErrTransportUnavailable,
//     when either side's queue pair or probe failed. Importing the package
//     registers it with the collective: ARK_COLL_TRANSPORT=rdma selects it
//     (no fallback), and auto, the default, uses it between hosts where
//     libibverbs and an active device are present, falling back to tcp per
//     connection on that verdict (ARK_COLL_TRANSPORT=tcp forces TCP).
//     collective/DESIGN.md describes the protocol.
//
// The inline verbs (ibv_post_send, ibv_post_recv, ibv_poll_cq) call through
// the provider's ops table in struct ibv_context, so abi.go mirrors the
// structures involved as rdma-core's stable ABI lays them out; TestABILayout
// checks every mirrored size, offset and constant against the installed
// <infiniband/verbs.h> (libibverbs-dev) and skips without it.
//
// What has never run: no code in this package has run against an RDMA
// device, the probe included; auto selects it on such machines anyway,
// trusting the probe to catch a path that does not work (DESIGN.md lists
// what it cannot catch). The project's machines have no RDMA NIC and cannot create a soft
// one. What runs in tests is the layout check, the absent-library and
// no-device errors, the pure-Go pieces (handshake codec and its fuzz
// targets, address parsing, GID choice, ring and credit accounting) and the
// whole data path above the verbs (handshake, credits, ring, deadlines,
// close, the collectivetest suites) over an in-memory fake NIC (fake_test.go).
// The verbs calls themselves (queue pair state changes, registration,
// posting, polling) are checked only for ABI layout. The conformance tests
// over real verbs (TestVerbsConformance, TestVerbsCollectives) skip until
// they run on a machine with a device.
package rdma
