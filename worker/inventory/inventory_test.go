package inventory

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh200"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/ark-sched/ark/scheduler/api"
)

const gi = int64(1) << 30

func TestParseFake(t *testing.T) {
	// Each group of fake GPUs is one NVLink domain.
	gpu := func(i int, model string, memGi int64, numa int, domain ...int) api.GPU {
		g := api.GPU{Index: i, UUID: fmt.Sprintf("GPU-fake-node1-%d", i), Model: model, MemoryBytes: memGi * gi, NUMANode: numa}
		for _, k := range domain {
			if k != i {
				g.NVLinkPeers = append(g.NVLinkPeers, k)
			}
		}
		if len(domain) > 0 {
			g.NVLinkDomain = domain[0]
		}
		return g
	}
	tests := []struct {
		spec string
		want []api.GPU
	}{
		{"1xH200:141Gi", []api.GPU{gpu(0, "NVIDIA H200", 141, 0, 0)}},
		{"2xL4:24Gi", []api.GPU{gpu(0, "NVIDIA L4", 24, 0, 0, 1), gpu(1, "NVIDIA L4", 24, 1, 0, 1)}},
		{"4xH200:141Gi", []api.GPU{
			gpu(0, "NVIDIA H200", 141, 0, 0, 1, 2, 3), gpu(1, "NVIDIA H200", 141, 0, 0, 1, 2, 3),
			gpu(2, "NVIDIA H200", 141, 1, 0, 1, 2, 3), gpu(3, "NVIDIA H200", 141, 1, 0, 1, 2, 3),
		}},
		// Groups continue the indexes; the node's GPUs split over two
		// NUMA nodes by position, whatever the groups.
		{"2xA100:80Gi, 2xL4:24Gi", []api.GPU{
			gpu(0, "NVIDIA A100", 80, 0, 0, 1), gpu(1, "NVIDIA A100", 80, 0, 0, 1),
			gpu(2, "NVIDIA L4", 24, 1, 2, 3), gpu(3, "NVIDIA L4", 24, 1, 2, 3),
		}},
		{"1xA100-SXM4:80Gi,1xH100:80Gi,2xB200:180Gi", []api.GPU{
			gpu(0, "NVIDIA A100-SXM4", 80, 0, 0), gpu(1, "NVIDIA H100", 80, 0, 1),
			gpu(2, "NVIDIA B200", 180, 1, 2, 3), gpu(3, "NVIDIA B200", 180, 1, 2, 3),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := ParseFake(tt.spec, "node1")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseFake =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}

	big, err := ParseFake("64xH200:141Gi", "n")
	if err != nil || len(big) != 64 || big[31].NUMANode != 0 || big[32].NUMANode != 1 {
		t.Fatalf("64 GPUs: %d, %v", len(big), err)
	}
	a, _ := ParseFake("2xH200:1Gi", "a")
	b, _ := ParseFake("2xH200:1Gi", "b")
	if a[0].UUID == b[0].UUID || a[0].UUID == a[1].UUID {
		t.Fatalf("fake UUIDs are not unique across nodes and GPUs: %s %s %s", a[0].UUID, a[1].UUID, b[0].UUID)
	}
}

func TestParseFakeErrors(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"", `fake GPUs "": want COUNTxMODEL:MEMORY`},
		{"H200:141Gi", `fake GPUs "H200:141Gi": want COUNTxMODEL:MEMORY`},
		{"4xH200", `fake GPUs "4xH200": want COUNTxMODEL:MEMORY`},
		{"4x:141Gi", `fake GPUs "4x:141Gi": want COUNTxMODEL:MEMORY`},
		{"0xH200:141Gi", `count must be 1..64, got "0"`},
		{"-1xH200:141Gi", `count must be 1..64, got "-1"`},
		{"65xH200:141Gi", `count must be 1..64, got "65"`},
		{"fourxH200:141Gi", `count must be 1..64, got "four"`},
		{"4xH200:lots", `memory "lots" is not a positive quantity`},
		{"4xH200:", `memory "" is not a positive quantity`},
		{"4xH200:0", `memory "0" is not a positive quantity`},
		{"4xH200:-1Gi", `memory "-1Gi" is not a positive quantity`},
		{"4xH200:141Gi,", `fake GPUs "": want COUNTxMODEL:MEMORY`},
		{"4xH200:141Gi,,2xL4:24Gi", `fake GPUs "": want COUNTxMODEL:MEMORY`},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			gpus, err := ParseFake(tt.spec, "n")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseFake = %v, %v; want error %q", gpus, err, tt.want)
			}
		})
	}
}

func TestDiscoverFake(t *testing.T) {
	inv, err := Discover(Options{FakeGPUs: "8xH200:141Gi", NodeName: "dev-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !inv.Fake || len(inv.GPUs) != 8 || inv.Source != "fake (8xH200:141Gi)" || inv.GPUs[7].UUID != "GPU-fake-dev-1-7" {
		t.Fatalf("inventory = %+v", inv)
	}
	if inv.CPUMilli != int64(runtime.NumCPU())*1000 || inv.MemoryBytes < 64<<20 {
		t.Fatalf("host CPU %dm, memory %d", inv.CPUMilli, inv.MemoryBytes)
	}
	if _, err := Discover(Options{FakeGPUs: "8xH200"}); err == nil {
		t.Fatal("Discover accepted a bad fake spec")
	}
}

func TestDiscoverNVMLDGXH200(t *testing.T) {
	srv := h200()
	shutdowns := 0
	srv.ShutdownFunc = func() nvml.Return { shutdowns++; return nvml.SUCCESS }
	gpus, err := DiscoverNVML(srv)
	if err != nil {
		t.Fatal(err)
	}
	if len(gpus) != 8 {
		t.Fatalf("%d GPUs, want 8", len(gpus))
	}
	uuids := map[string]bool{}
	for i, g := range gpus {
		if g.Index != i || g.Model != "NVIDIA H200 141GB HBM3e" || g.MemoryBytes != 141*gi || g.NUMANode != i/4 || g.NVLinkDomain != 0 || len(g.NVLinkPeers) != 7 {
			t.Errorf("GPU %d = %+v", i, g)
		}
		if want := srv.Devices[i].(*server.Device).UUID; g.UUID != want || !strings.HasPrefix(g.UUID, "GPU-") {
			t.Errorf("GPU %d UUID %q, want %q", i, g.UUID, want)
		}
		uuids[g.UUID] = true
	}
	if len(uuids) != 8 {
		t.Errorf("%d distinct UUIDs, want 8", len(uuids))
	}
	if shutdowns != 1 {
		t.Errorf("Shutdown called %d times, want 1", shutdowns)
	}

	inv, err := Discover(Options{NVML: h200()})
	if err != nil || inv.Fake || inv.Source != "nvml" || len(inv.GPUs) != 8 {
		t.Fatalf("Discover with NVML = %+v, %v", inv, err)
	}
}

func TestDiscoverNVMLPCIBusID(t *testing.T) {
	srv := dgxh200.NewWithGPUs()
	dev := dgxh200.NewDevice(0)
	dev.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) {
		var p nvml.PciInfo
		for i, c := range "00000000:1B:00.0" {
			p.BusId[i] = int8(c)
		}
		return p, nvml.SUCCESS
	}
	noPCI := dgxh200.NewDevice(1)
	noPCI.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) { return nvml.PciInfo{}, nvml.ERROR_NOT_SUPPORTED }
	srv.Devices = []nvml.Device{dev, noPCI}
	withTopology(srv, nil)
	gpus, err := DiscoverNVML(srv)
	if err != nil {
		t.Fatal(err)
	}
	if gpus[0].PCIBusID != "00000000:1B:00.0" || gpus[1].PCIBusID != "" {
		t.Fatalf("PCI bus IDs %q, %q", gpus[0].PCIBusID, gpus[1].PCIBusID)
	}
}

func TestDiscoverNVMLErrors(t *testing.T) {
	failDevice := func(set func(d *server.Device)) func(s *server.Server) {
		return func(s *server.Server) { set(s.Devices[3].(*server.Device)) }
	}
	tests := []struct {
		name     string
		break_   func(s *server.Server)
		want     string
		shutdown bool
	}{
		{"init fails", func(s *server.Server) {
			s.InitFunc = func() nvml.Return { return nvml.ERROR_DRIVER_NOT_LOADED }
		}, "nvml init: ERROR_DRIVER_NOT_LOADED", false},
		{"count fails", func(s *server.Server) {
			s.DeviceGetCountFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }
		}, "nvml device count: ERROR_UNKNOWN", true},
		{"handle fails", func(s *server.Server) {
			s.DeviceGetHandleByIndexFunc = func(int) (nvml.Device, nvml.Return) { return nil, nvml.ERROR_GPU_IS_LOST }
		}, "nvml device 0: ERROR_GPU_IS_LOST", true},
		{"uuid fails", failDevice(func(d *server.Device) {
			d.GetUUIDFunc = func() (string, nvml.Return) { return "", nvml.ERROR_UNKNOWN }
		}), "nvml device 3 uuid: ERROR_UNKNOWN", true},
		{"name fails", failDevice(func(d *server.Device) {
			d.GetNameFunc = func() (string, nvml.Return) { return "", nvml.ERROR_UNKNOWN }
		}), "nvml device 3 name: ERROR_UNKNOWN", true},
		{"memory fails", failDevice(func(d *server.Device) {
			d.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) { return nvml.Memory{}, nvml.ERROR_UNKNOWN }
		}), "nvml device 3 memory: ERROR_UNKNOWN", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := h200()
			srv.ErrorStringFunc = func(r nvml.Return) string { return r.String() }
			shutdowns := 0
			srv.ShutdownFunc = func() nvml.Return { shutdowns++; return nvml.SUCCESS }
			tt.break_(srv)
			gpus, err := DiscoverNVML(srv)
			if err == nil || err.Error() != tt.want || errors.Is(err, ErrNoNVML) {
				t.Fatalf("DiscoverNVML = %v, %v; want error %q", gpus, err, tt.want)
			}
			if (shutdowns == 1) != tt.shutdown {
				t.Fatalf("Shutdown called %d times", shutdowns)
			}
			if _, err := Discover(Options{NVML: srv}); err == nil {
				t.Fatal("Discover hid an NVML failure")
			}
		})
	}
}

func TestDiscoverNoNVML(t *testing.T) {
	srv := h200()
	srv.InitFunc = func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }
	if _, err := DiscoverNVML(srv); !errors.Is(err, ErrNoNVML) {
		t.Fatalf("DiscoverNVML = %v, want ErrNoNVML", err)
	}
	inv, err := Discover(Options{NVML: srv})
	if err != nil {
		t.Fatalf("Discover without NVML: %v", err)
	}
	if len(inv.GPUs) != 0 || inv.Fake || !strings.HasPrefix(inv.Source, "none (NVML library") {
		t.Fatalf("inventory = %+v", inv)
	}
}

// h200 is go-nvml's DGX H200 mock with the topology calls it leaves unset
// filled in as on the real machine: GPUs 0-3 on NUMA node 0 and 4-7 on 1,
// all eight in one NVSwitch domain.
func h200() *server.Server {
	srv := dgxh200.New()
	withTopology(srv, [][]int{{0, 1, 2, 3, 4, 5, 6, 7}})
	return srv
}

// withTopology sets every device's NUMA node (first half 0, second half 1)
// and NVLink P2P status (OK within a domain).
func withTopology(srv *server.Server, domains [][]int) {
	domainOf := map[nvml.Device]int{}
	for i, d := range srv.Devices {
		domainOf[d] = -1 - i // alone unless listed
	}
	for k, dom := range domains {
		for _, i := range dom {
			domainOf[srv.Devices[i]] = k
		}
	}
	n := len(srv.Devices)
	for i, d := range srv.Devices {
		dev, numa := d.(*server.Device), i*2/n
		self := d
		dev.GetNumaNodeIdFunc = func() (int, nvml.Return) { return numa, nvml.SUCCESS }
		dev.GetP2PStatusFunc = func(other nvml.Device, idx nvml.GpuP2PCapsIndex) (nvml.GpuP2PStatus, nvml.Return) {
			if idx != nvml.P2P_CAPS_INDEX_NVLINK {
				return nvml.P2P_STATUS_NOT_SUPPORTED, nvml.ERROR_NOT_SUPPORTED
			}
			if domainOf[other] == domainOf[self] {
				return nvml.P2P_STATUS_OK, nvml.SUCCESS
			}
			return nvml.P2P_STATUS_NOT_SUPPORTED, nvml.SUCCESS
		}
	}
}

func TestNVLinkDomains(t *testing.T) {
	srv := dgxh200.New()
	// Two 3-GPU NVLink islands and two GPUs without NVLink.
	withTopology(srv, [][]int{{0, 1, 2}, {4, 6, 7}})
	gpus, err := DiscoverNVML(srv)
	if err != nil {
		t.Fatal(err)
	}
	wantDomain := []int{0, 0, 0, 3, 4, 5, 4, 4}
	wantPeers := [][]int{{1, 2}, {0, 2}, {0, 1}, nil, {6, 7}, nil, {4, 7}, {4, 6}}
	for i, g := range gpus {
		if g.NVLinkDomain != wantDomain[i] || !reflect.DeepEqual(g.NVLinkPeers, wantPeers[i]) {
			t.Errorf("GPU %d: domain %d peers %v, want %d %v", i, g.NVLinkDomain, g.NVLinkPeers, wantDomain[i], wantPeers[i])
		}
	}
}
