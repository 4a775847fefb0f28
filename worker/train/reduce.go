package train

import (
	"context"
	"fmt"
	"runtime"

	"github.com/ark-sched/ark/collective"
	"github.com/ark-sched/ark/collective/nccl"
	"github.com/ark-sched/ark/kernels"
)

// gradReducer averages the gradient buffer (the gradients, then the loss
// slot) across ranks, bucket by bucket as backward finishes them, so the
// communication of late layers overlaps the backward of early ones.
type gradReducer interface {
	// name says which path runs ("host", "staged", "nccl").
	name() string
	// start begins averaging gradAll[lo:hi], final on this rank.
	start(ctx context.Context, lo, hi int) error
	// wait returns once every started bucket is averaged into gradAll.
	wait() error
}

// DeviceComm is a device-memory collective for gradients: NCCL's
// communicator on a CUDA device. The trainer all-reduces gradients in
// place on the device with it instead of going through host memory.
type DeviceComm interface {
	AllReduce(send, recv uintptr, count int, dt nccl.DataType, op nccl.RedOp, stream uintptr) error
}

// devicePointers is what a device offers DeviceComm: raw addresses of its
// buffers and its context on the calling thread (kernels/cuda.Device).
type devicePointers interface {
	DevicePtr(b kernels.Buffer) (uintptr, error)
	MakeCurrent() error
}

// newReducer picks the gradient path: in place in host memory (CPU), in
// place on the device with DeviceComm (CUDA + NCCL), or staged through a
// host copy over Ark's collectives (any other device).
func newReducer(m *Model, comm Comm, dc DeviceComm) (gradReducer, error) {
	grad := m.trainable().gradAll
	if dc != nil {
		dp, ok := m.d.(devicePointers)
		if !ok {
			return nil, fmt.Errorf("%w: a device collective needs a device with raw pointers (cuda), got %s", ErrConfig, m.d.Name())
		}
		base, err := dp.DevicePtr(grad)
		if err != nil {
			return nil, err
		}
		return &deviceReducer{d: m.d, dp: dp, dc: dc, base: base}, nil
	}
	if h, ok := m.d.(kernels.HostAccess); ok {
		host, err := h.Float32s(grad)
		if err != nil {
			return nil, err
		}
		return &hostReducer{comm: comm, host: host}, nil
	}
	return &stagedReducer{comm: comm, d: m.d, grad: grad, stage: make([]float32, grad.Len())}, nil
}

// hostReducer all-reduces the gradient buffer where it is: host memory.
type hostReducer struct {
	comm    Comm
	host    []float32
	handles []*collective.Handle
}

func (r *hostReducer) name() string { return "host" }

func (r *hostReducer) start(ctx context.Context, lo, hi int) error {
	r.handles = append(r.handles, r.comm.AllReduceAsync(ctx, collective.Float32s(r.host[lo:hi]), collective.Avg))
	return nil
}

func (r *hostReducer) wait() error { return waitAll(&r.handles) }

// stagedReducer copies each finished bucket to host memory, all-reduces it
// there with Ark's collectives while backward goes on, and copies the
// averaged gradients back once all are done: the path for device memory
// without a device collective.
type stagedReducer struct {
	comm    Comm
	d       kernels.Device
	grad    kernels.Buffer
	stage   []float32
	handles []*collective.Handle
	lo      int // lowest element started
}

func (r *stagedReducer) name() string { return "staged" }

func (r *stagedReducer) start(ctx context.Context, lo, hi int) error {
	part, err := r.d.Slice(r.grad, lo, hi-lo)
	if err != nil {
		return err
	}
	if err := kernels.ReadFloat32(r.d, r.stage[lo:hi], part); err != nil {
		return fmt.Errorf("stage gradients [%d:%d]: %w", lo, hi, err)
	}
	if len(r.handles) == 0 || lo < r.lo {
		r.lo = lo
	}
	r.handles = append(r.handles, r.comm.AllReduceAsync(ctx, collective.Float32s(r.stage[lo:hi]), collective.Avg))
	return nil
}

func (r *stagedReducer) wait() error {
	started := len(r.handles) > 0
	if err := waitAll(&r.handles); err != nil || !started {
		return err
	}
	part, err := r.d.Slice(r.grad, r.lo, len(r.stage)-r.lo)
	if err != nil {
		return err
	}
	return kernels.WriteFloat32(r.d, part, r.stage[r.lo:])
}

// deviceReducer averages buckets in place on the device with NCCL,
// enqueued on the default stream behind the backward kernels that produced
// them (so it needs no host copy, but the stream orders communication
// after compute: NCCL's own proxy threads do the network progress).
type deviceReducer struct {
	d    kernels.Device
	dp   devicePointers
	dc   DeviceComm
	base uintptr
}

func (r *deviceReducer) name() string { return "nccl" }

func (r *deviceReducer) start(_ context.Context, lo, hi int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := r.dp.MakeCurrent(); err != nil {
		return err
	}
	p := r.base + uintptr(4*lo)
	return r.dc.AllReduce(p, p, hi-lo, nccl.Float32, nccl.Avg, 0)
}

func (r *deviceReducer) wait() error { return r.d.Sync() }

func waitAll(hs *[]*collective.Handle) error {
	var first error
	for _, h := range *hs {
		if err := h.Wait(); err != nil && first == nil {
			first = err
		}
	}
	*hs = (*hs)[:0]
	return first
}
