package inventory

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/Mellanox/rdmamap"

	"github.com/ark-sched/ark/scheduler/api"
)

// DiscoverRDMA lists the node's RDMA devices through rdmamap (sysfs under
// /sys/class/infiniband): ports, netdevs, PCI address and NUMA node. A node
// without RDMA devices gives an empty list and no error.
func DiscoverRDMA() ([]api.RDMADevice, error) {
	names := rdmamap.GetRdmaDeviceList()
	if len(names) == 0 {
		return nil, nil
	}
	sort.Strings(names)
	devs := make([]api.RDMADevice, len(names))
	byName := map[string]*api.RDMADevice{}
	for i, name := range names {
		d := &devs[i]
		d.Name, d.NUMANode = name, -1
		for _, p := range rdmamap.GetPorts(name) {
			if n, err := strconv.Atoi(p); err == nil {
				d.Ports = append(d.Ports, n)
			}
		}
		sort.Ints(d.Ports)
		devDir := filepath.Join(rdmamap.RdmaClassDir, name, "device")
		if target, err := os.Readlink(devDir); err == nil {
			d.PCIBusID = filepath.Base(target)
		}
		if b, err := os.ReadFile(filepath.Join(devDir, "numa_node")); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				d.NUMANode = n
			}
		}
		byName[name] = d
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		if dev, err := rdmamap.GetRdmaDeviceForNetdevice(ifc.Name); err == nil && byName[dev] != nil {
			byName[dev].Netdevs = append(byName[dev].Netdevs, ifc.Name)
		}
	}
	return devs, nil
}

// NearestRDMA returns the RDMA devices closest to the given GPUs: those on
// the GPUs' NUMA nodes, or every device when none shares one (or NUMA is
// unknown).
func NearestRDMA(gpus []api.GPU, nics []api.RDMADevice) []api.RDMADevice {
	numa := map[int]bool{}
	for _, g := range gpus {
		if g.NUMANode >= 0 {
			numa[g.NUMANode] = true
		}
	}
	var near []api.RDMADevice
	for _, d := range nics {
		if numa[d.NUMANode] {
			near = append(near, d)
		}
	}
	if len(near) == 0 {
		return nics
	}
	return near
}

// NCCLEnv returns NCCL_IB_HCA (exact device:port matches, "=mlx5_0:1,...")
// and NCCL_SOCKET_IFNAME (exact netdev matches) for the given NICs; empty
// strings when there are none.
func NCCLEnv(nics []api.RDMADevice) (ibHCA, socketIfname string) {
	var hcas, ifs []string
	for _, d := range nics {
		port := 1
		if len(d.Ports) > 0 {
			port = d.Ports[0]
		}
		hcas = append(hcas, fmt.Sprintf("%s:%d", d.Name, port))
		ifs = append(ifs, d.Netdevs...)
	}
	if len(hcas) > 0 {
		ibHCA = "=" + strings.Join(hcas, ",")
	}
	if len(ifs) > 0 {
		socketIfname = "=" + strings.Join(ifs, ",")
	}
	return ibHCA, socketIfname
}
