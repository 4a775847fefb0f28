package inventory

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// Inventory is what a node offers.
type Inventory struct {
	GPUs        []api.GPU
	RDMA        []api.RDMADevice
	CPUMilli    int64
	MemoryBytes int64
	// Fake is true when the GPUs are simulated.
	Fake bool
	// Source says where the GPU list came from, for logs.
	Source string
}

// Options select how to discover GPUs.
type Options struct {
	// FakeGPUs, when set, replaces discovery ("4xH200:141Gi").
	FakeGPUs string
	// NodeName seeds fake GPU UUIDs.
	NodeName string
	// NVML is the library to query; nil uses the system's libnvidia-ml.
	NVML nvml.Interface
}

// Discover builds the node's inventory.
func Discover(opts Options) (*Inventory, error) {
	inv := &Inventory{CPUMilli: int64(runtime.NumCPU()) * 1000}
	mem, err := hostMemory()
	if err != nil {
		return nil, err
	}
	inv.MemoryBytes = mem
	if inv.RDMA, err = DiscoverRDMA(); err != nil {
		return nil, err
	}
	if opts.FakeGPUs != "" {
		gpus, err := ParseFake(opts.FakeGPUs, opts.NodeName)
		if err != nil {
			return nil, err
		}
		inv.GPUs, inv.Fake, inv.Source = gpus, true, "fake ("+opts.FakeGPUs+")"
		return inv, nil
	}
	lib := opts.NVML
	if lib == nil {
		lib = nvml.New()
	}
	gpus, err := DiscoverNVML(lib)
	switch {
	case errors.Is(err, ErrNoNVML):
		inv.Source = "none (" + err.Error() + ")"
	case err != nil:
		return nil, err
	default:
		inv.GPUs, inv.Source = gpus, "nvml"
	}
	return inv, nil
}

// ErrNoNVML means the NVML library is not on this machine.
var ErrNoNVML = errors.New("NVML library (libnvidia-ml.so.1) not found")

// DiscoverNVML lists the GPUs NVML reports.
func DiscoverNVML(lib nvml.Interface) ([]api.GPU, error) {
	if ret := lib.Init(); ret != nvml.SUCCESS {
		if ret == nvml.ERROR_LIBRARY_NOT_FOUND {
			return nil, ErrNoNVML
		}
		return nil, fmt.Errorf("nvml init: %s", lib.ErrorString(ret))
	}
	defer lib.Shutdown()
	count, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("nvml device count: %s", lib.ErrorString(ret))
	}
	gpus := make([]api.GPU, 0, count)
	devs := make([]nvml.Device, 0, count)
	for i := 0; i < count; i++ {
		dev, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("nvml device %d: %s", i, lib.ErrorString(ret))
		}
		g := api.GPU{Index: i, NUMANode: -1}
		if g.UUID, ret = dev.GetUUID(); ret != nvml.SUCCESS {
			return nil, fmt.Errorf("nvml device %d uuid: %s", i, lib.ErrorString(ret))
		}
		if g.Model, ret = dev.GetName(); ret != nvml.SUCCESS {
			return nil, fmt.Errorf("nvml device %d name: %s", i, lib.ErrorString(ret))
		}
		mem, ret := dev.GetMemoryInfo()
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("nvml device %d memory: %s", i, lib.ErrorString(ret))
		}
		g.MemoryBytes = int64(mem.Total)
		if pci, ret := dev.GetPciInfo(); ret == nvml.SUCCESS {
			g.PCIBusID = busID(pci.BusId)
		}
		if numa, ret := dev.GetNumaNodeId(); ret == nvml.SUCCESS {
			g.NUMANode = numa
		}
		gpus = append(gpus, g)
		devs = append(devs, dev)
	}
	nvlinkTopology(gpus, devs)
	return gpus, nil
}

// nvlinkTopology fills in each GPU's NVLink peers (NVML's P2P status over
// NVLink, which covers direct links and NVSwitch fabrics alike) and groups
// the GPUs into NVLink domains (connected components).
func nvlinkTopology(gpus []api.GPU, devs []nvml.Device) {
	parent := make([]int, len(gpus))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	for i := range devs {
		for j := i + 1; j < len(devs); j++ {
			st, ret := devs[i].GetP2PStatus(devs[j], nvml.P2P_CAPS_INDEX_NVLINK)
			if ret != nvml.SUCCESS || st != nvml.P2P_STATUS_OK {
				continue
			}
			gpus[i].NVLinkPeers = append(gpus[i].NVLinkPeers, j)
			gpus[j].NVLinkPeers = append(gpus[j].NVLinkPeers, i)
			ri, rj := find(i), find(j)
			if ri != rj {
				parent[max(ri, rj)] = min(ri, rj)
			}
		}
	}
	for i := range gpus {
		gpus[i].NVLinkDomain = find(i)
	}
}

func busID(raw [32]int8) string {
	var b strings.Builder
	for _, c := range raw {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return b.String()
}

// ParseFake parses a fake GPU spec: comma-separated groups of
// COUNTxMODEL:MEMORY, such as "4xH200:141Gi" or "2xA100:80Gi,2xL4:24Gi".
func ParseFake(s, nodeName string) ([]api.GPU, error) {
	var gpus []api.GPU
	for _, group := range strings.Split(s, ",") {
		group = strings.TrimSpace(group)
		countStr, rest, ok := strings.Cut(group, "x")
		if !ok {
			return nil, fmt.Errorf("fake GPUs %q: want COUNTxMODEL:MEMORY such as 4xH200:141Gi", group)
		}
		count, err := strconv.Atoi(countStr)
		if err != nil || count < 1 || count > 64 {
			return nil, fmt.Errorf("fake GPUs %q: count must be 1..64, got %q", group, countStr)
		}
		model, memStr, ok := strings.Cut(rest, ":")
		if !ok || model == "" {
			return nil, fmt.Errorf("fake GPUs %q: want COUNTxMODEL:MEMORY such as 4xH200:141Gi", group)
		}
		mem, err := spec.Quantity(memStr).Bytes()
		if err != nil || mem <= 0 {
			return nil, fmt.Errorf("fake GPUs %q: memory %q is not a positive quantity such as 141Gi", group, memStr)
		}
		first := len(gpus)
		for i := 0; i < count; i++ {
			idx := len(gpus)
			var peers []int
			for k := first; k < first+count; k++ {
				if k != idx {
					peers = append(peers, k)
				}
			}
			gpus = append(gpus, api.GPU{
				NVLinkDomain: first, NVLinkPeers: peers,
				Index: idx, UUID: fmt.Sprintf("GPU-fake-%s-%d", nodeName, idx),
				Model: "NVIDIA " + model, MemoryBytes: mem,
			})
		}
	}
	// Like a two-socket machine: the lower half of the node's GPUs on NUMA
	// node 0, the upper half on 1, whatever the groups.
	for i := range gpus {
		gpus[i].NUMANode = i * 2 / len(gpus)
	}
	return gpus, nil
}

// hostMemory reads MemTotal from /proc/meminfo.
func hostMemory() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("read host memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse MemTotal %q: %w", fields[1], err)
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("read host memory: no MemTotal in /proc/meminfo")
}
