//go:build cgo

package cuda

import (
	"fmt"
	"math"
	"os"
	"sync"

	"github.com/ark-sched/ark/kernels"
)

// buffer is device memory: a CUdeviceptr and its element type and count.
type buffer struct {
	dev  *Device
	ptr  uint64
	dt   kernels.DType
	n    int
	root bool
}

func (b *buffer) DType() kernels.DType { return b.dt }
func (b *buffer) Len() int             { return b.n }
func (b *buffer) bytes() int           { return b.n * b.dt.Size() }

// Device is one CUDA GPU's primary context with Ark's kernels loaded.
type Device struct {
	ordinal      int
	dev          cDevice
	ctx          ctxHandle
	name         string
	major, minor int
	mod          cHandle
	image        string // where the kernels came from: "embedded sm_90", "NVRTC 11.8 sm_75"
	fn           map[string]cHandle
	blas         cHandle // 0 without cuBLAS
	loraU        *buffer // GatherLoRA's shrink output, grown on demand
	mu           sync.Mutex
	closed       bool
}

var _ kernels.Device = (*Device)(nil)
var _ kernels.BF16Storage = (*Device)(nil)
var _ kernels.Describer = (*Device)(nil)

// New opens GPU ordinal: loads the libraries, retains the primary context,
// loads the kernels (the embedded image for the device's architecture, or
// NVRTC's from the cache or compiled now) and creates a cuBLAS handle
// when libcublas is present. Without a driver or a device the error wraps
// kernels.ErrUnavailable.
func New(ordinal int) (*Device, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	dev, name, major, minor, err := deviceInfo(ordinal)
	if err != nil {
		return nil, err
	}
	ctx, err := ctxRetain(dev)
	if err != nil {
		return nil, err
	}
	d := &Device{ordinal: ordinal, dev: dev, ctx: ctx, name: name, major: major, minor: minor, fn: map[string]cHandle{}}
	if err := d.init(); err != nil {
		_ = d.Close()
		return nil, err
	}
	return d, nil
}

func (d *Device) init() error {
	var err error
	if d.mod, d.image, err = loadKernels(d.ctx, d.major, d.minor); err != nil {
		return err
	}
	for _, n := range kernelNames {
		f, err := moduleFunction(d.ctx, d.mod, n)
		if err != nil {
			return err
		}
		d.fn[n] = f
	}
	// ARK_CUDA_CUBLAS=off measures Ark's own matmul where cuBLAS is
	// installed too (bench/gpu/check.sh compares the two).
	if haveBLAS && os.Getenv("ARK_CUDA_CUBLAS") != "off" {
		if d.blas, err = cublasCreate(d.ctx); err != nil {
			d.blas = 0 // fall back to Ark's matmul kernel
		}
	}
	return nil
}

// Name is "cuda".
func (d *Device) Name() string { return "cuda" }

// Describe names the GPU, its architecture and the matmul path.
func (d *Device) Describe() string {
	mm := "ark tiled matmul"
	if d.blas != 0 {
		mm = "cuBLAS matmul"
	}
	return fmt.Sprintf("cuda: %s, sm_%d%d, kernels %s, %s", d.name, d.major, d.minor, d.image, mm)
}

// Close frees the module and the cuBLAS handle and releases the context.
// It is idempotent. Buffers not freed are released with the context only
// when no other Device holds it.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var first error
	keep := func(err error) {
		if first == nil && err != nil {
			first = err
		}
	}
	keep(ctxSync(d.ctx))
	if d.loraU != nil {
		keep(memFree(d.ctx, d.loraU.ptr))
		d.loraU = nil
	}
	if d.blas != 0 {
		keep(cublasDestroy(d.ctx, d.blas))
	}
	if d.mod != 0 {
		keep(moduleUnload(d.ctx, d.mod))
	}
	keep(ctxRelease(d.dev))
	if first != nil {
		return fmt.Errorf("cuda: close device %d: %w", d.ordinal, first)
	}
	return nil
}

func (d *Device) own(op string, b kernels.Buffer) (*buffer, error) {
	if d.closed {
		return nil, fmt.Errorf("%s: %w", op, kernels.ErrClosed)
	}
	cb, ok := b.(*buffer)
	if !ok || cb == nil || cb.dev != d {
		return nil, fmt.Errorf("%s: buffer %T: %w", op, b, kernels.ErrForeignBuffer)
	}
	return cb, nil
}

// ptrs resolves buffers to device pointers (0 for nil).
func (d *Device) ptrs(op string, bufs ...kernels.Buffer) ([]uint64, error) {
	out := make([]uint64, len(bufs))
	for i, b := range bufs {
		if b == nil {
			continue
		}
		cb, err := d.own(op, b)
		if err != nil {
			return nil, err
		}
		out[i] = cb.ptr
	}
	return out, nil
}

// Alloc returns zeroed device memory.
func (d *Device) Alloc(dt kernels.DType, n int) (kernels.Buffer, error) {
	if d.closed {
		return nil, fmt.Errorf("alloc: %w", kernels.ErrClosed)
	}
	if n < 0 || dt.Size() == 0 {
		return nil, fmt.Errorf("alloc %d x %v: %w", n, dt, kernels.ErrArgument)
	}
	p, err := memAlloc(d.ctx, n*dt.Size())
	if err != nil {
		return nil, fmt.Errorf("cuda: alloc %d x %v: %w", n, dt, err)
	}
	b := &buffer{dev: d, ptr: p, dt: dt, n: n, root: true}
	words := (b.bytes() + 3) / 4
	if err := memsetD32(d.ctx, p, 0, words); err != nil {
		_ = memFree(d.ctx, p)
		return nil, fmt.Errorf("cuda: zero %d x %v: %w", n, dt, err)
	}
	return b, nil
}

// Free releases memory from Alloc.
func (d *Device) Free(b kernels.Buffer) error {
	cb, err := d.own("free", b)
	if err != nil {
		return err
	}
	if !cb.root {
		return fmt.Errorf("free: a slice is not freed: %w", kernels.ErrArgument)
	}
	if cb.ptr == 0 {
		return nil
	}
	err = memFree(d.ctx, cb.ptr)
	cb.ptr, cb.n = 0, 0
	if err != nil {
		return fmt.Errorf("cuda: free: %w", err)
	}
	return nil
}

// Slice returns a view of b.
func (d *Device) Slice(b kernels.Buffer, off, n int) (kernels.Buffer, error) {
	cb, err := d.own("slice", b)
	if err != nil {
		return nil, err
	}
	if err := kernels.CheckSlice(b, off, n); err != nil {
		return nil, err
	}
	return &buffer{dev: d, ptr: cb.ptr + uint64(off*cb.dt.Size()), dt: cb.dt, n: n}, nil
}

// CopyIn copies host bytes to dst (synchronous, after all issued work).
func (d *Device) CopyIn(dst kernels.Buffer, src []byte) error {
	cb, err := d.own("copy in", dst)
	if err != nil {
		return err
	}
	if err := kernels.CheckCopy(dst, len(src)); err != nil {
		return err
	}
	if err := memcpyHtoD(d.ctx, cb.ptr, src); err != nil {
		return fmt.Errorf("cuda: copy in %d bytes: %w", len(src), err)
	}
	return nil
}

// CopyOut copies src to host bytes (synchronous, after all issued work).
func (d *Device) CopyOut(dst []byte, src kernels.Buffer) error {
	cb, err := d.own("copy out", src)
	if err != nil {
		return err
	}
	if err := kernels.CheckCopy(src, len(dst)); err != nil {
		return err
	}
	if err := memcpyDtoH(d.ctx, dst, cb.ptr); err != nil {
		return fmt.Errorf("cuda: copy out %d bytes: %w", len(dst), err)
	}
	return nil
}

// Sync waits for all issued work.
func (d *Device) Sync() error {
	if d.closed {
		return kernels.ErrClosed
	}
	if err := ctxSync(d.ctx); err != nil {
		return fmt.Errorf("cuda: synchronize: %w", err)
	}
	return nil
}

// i64 and f32 are launch slots like i32 (args.go).
func i64(v int) uint64     { return uint64(int64(v)) }
func f32(v float32) uint64 { return uint64(math.Float32bits(v)) }

// argValues is the launch's slots of named arguments (args.go).
func argValues(args []arg) []uint64 {
	out := make([]uint64, len(args))
	for i, a := range args {
		out[i] = a.v
	}
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func grid1(n, block int) [3]uint32 {
	g := (n + block - 1) / block
	if g < 1 {
		g = 1
	}
	return [3]uint32{uint32(g), 1, 1}
}

// run launches kernel name.
func (d *Device) run(name string, grid, block [3]uint32, args ...uint64) error {
	if err := launch(d.ctx, d.fn[name], grid, block, args); err != nil {
		return fmt.Errorf("cuda: launch %s: %w", name, err)
	}
	return nil
}

// runN launches an elementwise kernel over n elements, 256 threads a block.
func (d *Device) runN(name string, n int, args ...uint64) error {
	if n == 0 {
		return nil
	}
	return d.run(name, grid1(n, 256), [3]uint32{256, 1, 1}, args...)
}

// DevicePtr is the device address of a buffer of this device (a
// CUdeviceptr), for libraries that take raw pointers, such as NCCL.
func (d *Device) DevicePtr(b kernels.Buffer) (uintptr, error) {
	cb, err := d.own("device pointer", b)
	if err != nil {
		return 0, err
	}
	return uintptr(cb.ptr), nil
}

// MakeCurrent makes the device's context current on the calling OS thread,
// for libraries that use the CUDA runtime on it (NCCL). The caller locks
// the goroutine to its thread (runtime.LockOSThread) around the calls.
func (d *Device) MakeCurrent() error {
	if d.closed {
		return fmt.Errorf("make current: %w", kernels.ErrClosed)
	}
	return ctxSetCurrent(d.ctx)
}
