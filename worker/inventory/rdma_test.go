package inventory

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestDiscoverRDMAFakeSysfs runs the real rdmamap-based discovery against a
// fake sysfs tree: on a thread with its own mount and network namespaces, a
// tmpfs hides /sys/class, the fake infiniband class is bind-mounted there,
// and a veth pair stands in for the RoCE netdevs. It needs root
// (CAP_SYS_ADMIN); elsewhere it is skipped.
func TestDiscoverRDMAFakeSysfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private mount namespace")
	}
	root := t.TempDir()
	writeFile := func(path, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// As in sysfs: the class entry is a symlink to the device's directory
	// under its PCI function, whose "device" link leads back to the PCI
	// function.
	fake := func(dev, pci, numa, netdev string) {
		pciDir := filepath.Join(root, "pci", pci)
		writeFile(filepath.Join(pciDir, "numa_node"), numa+"\n")
		ib := filepath.Join(pciDir, "infiniband", dev)
		writeFile(filepath.Join(ib, "node_guid"), "0000:0000:0000:0001\n")
		writeFile(filepath.Join(ib, "ports", "1", "gid_attrs", "ndevs", "0"), netdev+"\n")
		if err := os.Symlink(pciDir, filepath.Join(ib, "device")); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, "infiniband"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(ib, filepath.Join(root, "infiniband", dev)); err != nil {
			t.Fatal(err)
		}
	}
	fake("mlx5_0", "0000:1a:00.0", "0", "arkroce0")
	fake("mlx5_1", "0000:9a:00.0", "1", "arkroce1")

	done := make(chan struct{})
	var got []api.RDMADevice
	var err error
	skip := ""
	go func() {
		defer close(done)
		// This thread gets its own namespaces and is never given back to
		// the scheduler (the goroutine ends locked, so the thread exits).
		runtime.LockOSThread()
		if e := syscall.Unshare(syscall.CLONE_NEWNS | syscall.CLONE_NEWNET); e != nil {
			skip = "unshare: " + e.Error()
			return
		}
		if e := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); e != nil {
			skip = "make mounts private: " + e.Error()
			return
		}
		if e := syscall.Mount("tmpfs", "/sys/class", "tmpfs", 0, ""); e != nil {
			skip = "mount tmpfs: " + e.Error()
			return
		}
		if e := os.Mkdir("/sys/class/infiniband", 0o755); e != nil {
			err = e
			return
		}
		if e := syscall.Mount(filepath.Join(root, "infiniband"), "/sys/class/infiniband", "", syscall.MS_BIND, ""); e != nil {
			err = e
			return
		}
		for _, pair := range [][2]string{{"arkroce0", "arkpeer0"}, {"arkroce1", "arkpeer1"}} {
			veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: pair[0]}, PeerName: pair[1]}
			if e := netlink.LinkAdd(veth); e != nil {
				skip = "create veth: " + e.Error()
				return
			}
		}
		got, err = DiscoverRDMA()
	}()
	<-done
	if skip != "" {
		t.Skip(skip)
	}
	if err != nil {
		t.Fatal(err)
	}
	want := []api.RDMADevice{
		{Name: "mlx5_0", Ports: []int{1}, Netdevs: []string{"arkroce0"}, PCIBusID: "0000:1a:00.0", NUMANode: 0},
		{Name: "mlx5_1", Ports: []int{1}, Netdevs: []string{"arkroce1"}, PCIBusID: "0000:9a:00.0", NUMANode: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DiscoverRDMA:\n got %+v\nwant %+v", got, want)
	}
}

func TestNearestRDMAAndNCCLEnv(t *testing.T) {
	nics := []api.RDMADevice{
		{Name: "mlx5_0", Ports: []int{1}, Netdevs: []string{"ens1"}, NUMANode: 0},
		{Name: "mlx5_1", Ports: []int{1}, Netdevs: []string{"ens2"}, NUMANode: 0},
		{Name: "mlx5_2", Ports: []int{2}, Netdevs: []string{"ens3"}, NUMANode: 1},
	}
	cases := []struct {
		name      string
		gpus      []api.GPU
		hca, ifns string
	}{
		{"GPUs on NUMA 0", []api.GPU{{NUMANode: 0}, {NUMANode: 0}}, "=mlx5_0:1,mlx5_1:1", "=ens1,ens2"},
		{"GPU on NUMA 1", []api.GPU{{NUMANode: 1}}, "=mlx5_2:2", "=ens3"},
		{"GPUs on both", []api.GPU{{NUMANode: 0}, {NUMANode: 1}}, "=mlx5_0:1,mlx5_1:1,mlx5_2:2", "=ens1,ens2,ens3"},
		{"NUMA unknown: every NIC", []api.GPU{{NUMANode: -1}}, "=mlx5_0:1,mlx5_1:1,mlx5_2:2", "=ens1,ens2,ens3"},
	}
	for _, tc := range cases {
		hca, ifns := NCCLEnv(NearestRDMA(tc.gpus, nics))
		if hca != tc.hca || ifns != tc.ifns {
			t.Errorf("%s: NCCL_IB_HCA %q NCCL_SOCKET_IFNAME %q, want %q %q", tc.name, hca, ifns, tc.hca, tc.ifns)
		}
	}
	if hca, ifns := NCCLEnv(nil); hca != "" || ifns != "" {
		t.Errorf("no NICs: %q %q", hca, ifns)
	}
}
