package train

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"unsafe"

	"github.com/ark-sched/ark/collective/nccl"
	"github.com/ark-sched/ark/kernels"
)

// deviceMemory hides the CPU device's host access, as a GPU hides its
// memory: the trainer must stage gradients through copies.
type deviceMemory struct{ kernels.Device }

// pointerDevice is a CPU device that hands out raw addresses, as the CUDA
// device does for NCCL; mem remembers which memory each address is, so the
// fake NCCL never turns an integer back into a pointer.
type pointerDevice struct {
	kernels.Device
	h   kernels.HostAccess
	mem *addrSpace
}

type addrSpace struct {
	mu     sync.Mutex
	region map[uintptr][]float32
}

func (p pointerDevice) DevicePtr(b kernels.Buffer) (uintptr, error) {
	f, err := p.h.Float32s(b)
	if err != nil || len(f) == 0 {
		return 0, fmt.Errorf("no host view: %v", err)
	}
	addr := uintptr(unsafe.Pointer(&f[0]))
	p.mem.mu.Lock()
	p.mem.region[addr] = f
	p.mem.mu.Unlock()
	return addr, nil
}

// at returns the count float32s at addr, inside a region handed out.
func (m *addrSpace) at(addr uintptr, count int) ([]float32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for base, f := range m.region {
		if addr >= base && addr+uintptr(4*count) <= base+uintptr(4*len(f)) && (addr-base)%4 == 0 {
			off := int(addr-base) / 4
			return f[off : off+count], nil
		}
	}
	return nil, fmt.Errorf("address %x (%d floats) is in no buffer handed out", addr, count)
}

func (pointerDevice) MakeCurrent() error { return nil }

// fakeNCCL stands in for libnccl (absent here) behind DeviceComm: the
// ranks of one group average each call's buffers in place, given raw
// addresses, as ncclAllReduce(ncclAvg) does on device memory.
type fakeNCCL struct {
	g    *fakeGroup
	mem  *addrSpace
	rank int
	seq  int
}

type fakeGroup struct {
	mu      sync.Mutex
	cond    *sync.Cond
	world   int
	pending map[int][]fakeCall
	done    map[int]bool
	calls   int
}

type fakeCall struct {
	buf   []float32
	count int
}

func newFakeGroup(world int) *fakeGroup {
	g := &fakeGroup{world: world, pending: map[int][]fakeCall{}, done: map[int]bool{}}
	g.cond = sync.NewCond(&g.mu)
	return g
}

func (f *fakeNCCL) AllReduce(send, recv uintptr, count int, dt nccl.DataType, op nccl.RedOp, _ uintptr) error {
	if send != recv || dt != nccl.Float32 || op != nccl.Avg {
		return fmt.Errorf("fake nccl: only in-place float32 averages, got send %x recv %x dt %d op %d", send, recv, dt, op)
	}
	buf, err := f.mem.at(send, count)
	if err != nil {
		return fmt.Errorf("fake nccl: %w", err)
	}
	g := f.g
	g.mu.Lock()
	defer g.mu.Unlock()
	k := f.seq
	f.seq++
	g.calls++
	g.pending[k] = append(g.pending[k], fakeCall{buf, count})
	if len(g.pending[k]) == g.world {
		calls := g.pending[k]
		for _, c := range calls {
			if c.count != count {
				return fmt.Errorf("fake nccl: call %d counts differ: %d vs %d", k, c.count, count)
			}
		}
		for i := range count {
			var s float32
			for _, c := range calls {
				s += c.buf[i]
			}
			for _, c := range calls {
				c.buf[i] = s / float32(g.world)
			}
		}
		g.done[k] = true
		g.cond.Broadcast()
	}
	for !g.done[k] {
		g.cond.Wait()
	}
	return nil
}

// TestGradientPaths: two ranks train the same run with gradients averaged
// in host memory (CPU), staged through host copies (a device without host
// access), and in place by a device collective (the NCCL path, over a fake
// NCCL): the staged path ends bit for bit where the host path does, and
// every path keeps its ranks identical.
func TestGradientPaths(t *testing.T) {
	o := Options{ModelName: "gpt-test", Data: NewDataset(testText, 0.1), Steps: 4, Batch: 2, LR: 1e-2, Seed: 9, BucketElems: 1}
	host, hs := runRanks(t, 2, o)
	staged, ss := runRanksOn(t, 2, o, func(_ int, d kernels.Device, _ *Options) kernels.Device { return deviceMemory{d} })
	if !equal(staged[0], staged[1]) || !equal(staged[0], host[0]) || ss[0].LastLoss != hs[0].LastLoss {
		t.Fatalf("staged path differs from the host path (loss %v vs %v)", ss[0].LastLoss, hs[0].LastLoss)
	}
	if hs[0].GradPath != "host" || ss[0].GradPath != "staged" {
		t.Errorf("paths %q, %q", hs[0].GradPath, ss[0].GradPath)
	}
	g := newFakeGroup(2)
	mem := &addrSpace{region: map[uintptr][]float32{}}
	dev, ds := runRanksOn(t, 2, o, func(r int, d kernels.Device, ro *Options) kernels.Device {
		ro.DeviceComm = &fakeNCCL{g: g, mem: mem, rank: r}
		return pointerDevice{d, d.(kernels.HostAccess), mem}
	})
	if !equal(dev[0], dev[1]) || ds[0].GradPath != "nccl" {
		t.Fatalf("device path: ranks differ or path %q", ds[0].GradPath)
	}
	if g.calls == 0 {
		t.Fatal("the device collective was never called")
	}
	// Same sums, another rounding order: close to the host run.
	if d := math.Abs(ds[0].LastLoss - hs[0].LastLoss); d > 1e-3 {
		t.Errorf("device path loss %v, host %v", ds[0].LastLoss, hs[0].LastLoss)
	}
}
