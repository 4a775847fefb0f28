package cpu

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ark-sched/ark/kernels"
)

// buffer is host memory: words holds float32, int32 or packed bfloat16 pairs
// as raw 32-bit words so every dtype is 4-byte aligned.
type buffer struct {
	dev  *Device
	dt   kernels.DType
	n    int
	f    []float32 // Float32 and Int32 (reinterpreted) view
	h    []uint16  // BFloat16 view
	root bool      // from Alloc (not a Slice)
}

func (b *buffer) DType() kernels.DType { return b.dt }
func (b *buffer) Len() int             { return b.n }

func (b *buffer) i32() []int32 {
	if len(b.f) == 0 {
		return nil
	}
	return unsafe.Slice((*int32)(unsafe.Pointer(&b.f[0])), len(b.f))
}

func (b *buffer) bytes() []byte {
	switch {
	case b.dt == kernels.BFloat16 && len(b.h) > 0:
		return unsafe.Slice((*byte)(unsafe.Pointer(&b.h[0])), 2*len(b.h))
	case len(b.f) > 0:
		return unsafe.Slice((*byte)(unsafe.Pointer(&b.f[0])), 4*len(b.f))
	}
	return nil
}

// Device is the CPU backend. Its methods must not be called concurrently
// (see kernels.Device); its worker pool runs each op's parallel parts.
type Device struct {
	pool    *pool
	threads int // threads in use for the next op, 1..pool.size
	closed  bool
	closeMu sync.Mutex

	gemm    gemmState
	attn    attnJob
	lora    loraJob
	kvScore []float32 // CachedAttention's scores, Context long
	rows    rowJob
	embed   embedJob
	adam    adamJob
	slots   [8][]float32
	scratch [][]float32 // per worker, see rowScratch
}

var _ kernels.Device = (*Device)(nil)
var _ kernels.HostAccess = (*Device)(nil)
var _ kernels.BF16Storage = (*Device)(nil)
var _ kernels.ThreadSetter = (*Device)(nil)
var _ kernels.Describer = (*Device)(nil)
var _ kernels.GatheredLoRA = (*Device)(nil)
var _ kernels.CachedAttention = (*Device)(nil)

// New returns a Device with a pool of threads workers (the caller's goroutine
// counts as one); threads <= 0 means GOMAXPROCS.
func New(threads int) *Device {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	d := &Device{pool: newPool(threads), threads: threads}
	return d
}

// Name is "cpu".
func (d *Device) Name() string { return "cpu" }

// Describe names the matmul kernel and the thread count.
func (d *Device) Describe() string {
	return fmt.Sprintf("cpu: %s micro-kernel %dx%d, %d threads", kern.name, kern.mr, kern.nr, d.threads)
}

// SetThreads limits ops to n threads (at most the pool size given to New);
// n <= 0 restores the pool size.
func (d *Device) SetThreads(n int) {
	if n <= 0 || n > d.pool.size {
		n = d.pool.size
	}
	d.threads = n
}

// Threads is the number of threads ops use.
func (d *Device) Threads() int { return d.threads }

// Close stops the worker pool; it is idempotent. Buffers stay readable as
// Go memory but ops fail with kernels.ErrClosed.
func (d *Device) Close() error {
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	if !d.closed {
		d.closed = true
		d.pool.close()
	}
	return nil
}

func (d *Device) live() error {
	if d.closed {
		return kernels.ErrClosed
	}
	return nil
}

// own returns b as this device's buffer, or an error.
func (d *Device) own(b kernels.Buffer) (*buffer, error) {
	cb, ok := b.(*buffer)
	if !ok || cb == nil {
		return nil, fmt.Errorf("buffer %T: %w", b, kernels.ErrForeignBuffer)
	}
	if cb.dev != d {
		return nil, kernels.ErrForeignBuffer
	}
	return cb, nil
}

// f32 returns the float32 slices of bufs (nil for a nil buffer).
func (d *Device) f32(op string, bufs ...kernels.Buffer) ([][]float32, error) {
	if err := d.live(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	out := d.scratchSlices(len(bufs))
	for i, b := range bufs {
		if b == nil {
			out[i] = nil
			continue
		}
		cb, err := d.own(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		out[i] = cb.f
	}
	return out, nil
}

// Alloc returns a zeroed buffer.
func (d *Device) Alloc(dt kernels.DType, n int) (kernels.Buffer, error) {
	if err := d.live(); err != nil {
		return nil, fmt.Errorf("alloc: %w", err)
	}
	if n < 0 || dt.Size() == 0 {
		return nil, fmt.Errorf("alloc %d x %v: %w", n, dt, kernels.ErrArgument)
	}
	b := &buffer{dev: d, dt: dt, n: n, root: true}
	if dt == kernels.BFloat16 {
		b.h = make([]uint16, n)
	} else {
		b.f = make([]float32, n)
	}
	return b, nil
}

// Free drops the buffer (the garbage collector reclaims it).
func (d *Device) Free(b kernels.Buffer) error {
	cb, err := d.own(b)
	if err != nil {
		return fmt.Errorf("free: %w", err)
	}
	if !cb.root {
		return fmt.Errorf("free: a slice is not freed: %w", kernels.ErrArgument)
	}
	cb.f, cb.h, cb.n = nil, nil, 0
	return nil
}

// Slice returns a view of b.
func (d *Device) Slice(b kernels.Buffer, off, n int) (kernels.Buffer, error) {
	cb, err := d.own(b)
	if err != nil {
		return nil, fmt.Errorf("slice: %w", err)
	}
	if err := kernels.CheckSlice(b, off, n); err != nil {
		return nil, err
	}
	s := &buffer{dev: d, dt: cb.dt, n: n}
	if cb.dt == kernels.BFloat16 {
		s.h = cb.h[off : off+n : off+n]
	} else {
		s.f = cb.f[off : off+n : off+n]
	}
	return s, nil
}

// CopyIn copies host bytes into dst.
func (d *Device) CopyIn(dst kernels.Buffer, src []byte) error {
	cb, err := d.own(dst)
	if err != nil {
		return fmt.Errorf("copy in: %w", err)
	}
	if err := kernels.CheckCopy(dst, len(src)); err != nil {
		return err
	}
	copy(cb.bytes(), src)
	return nil
}

// CopyOut copies src into host bytes.
func (d *Device) CopyOut(dst []byte, src kernels.Buffer) error {
	cb, err := d.own(src)
	if err != nil {
		return fmt.Errorf("copy out: %w", err)
	}
	if err := kernels.CheckCopy(src, len(dst)); err != nil {
		return err
	}
	copy(dst, cb.bytes())
	return nil
}

// Sync returns at once: CPU ops are synchronous.
func (d *Device) Sync() error { return d.live() }

// Float32s returns the buffer's memory (kernels.HostAccess).
func (d *Device) Float32s(b kernels.Buffer) ([]float32, error) {
	cb, err := d.own(b)
	if err != nil {
		return nil, err
	}
	if cb.dt != kernels.Float32 {
		return nil, fmt.Errorf("float32s of a %v buffer: %w", cb.dt, kernels.ErrShape)
	}
	return cb.f, nil
}

// Int32s returns the buffer's memory (kernels.HostAccess).
func (d *Device) Int32s(b kernels.Buffer) ([]int32, error) {
	cb, err := d.own(b)
	if err != nil {
		return nil, err
	}
	if cb.dt != kernels.Int32 {
		return nil, fmt.Errorf("int32s of a %v buffer: %w", cb.dt, kernels.ErrShape)
	}
	return cb.i32(), nil
}

// ToBF16 converts Float32 src to BFloat16 dst.
func (d *Device) ToBF16(dst, src kernels.Buffer) error {
	db, err1 := d.own(dst)
	sb, err2 := d.own(src)
	if err := firstErr(err1, err2); err != nil {
		return fmt.Errorf("to bf16: %w", err)
	}
	if db.dt != kernels.BFloat16 || sb.dt != kernels.Float32 || db.n != sb.n {
		return fmt.Errorf("to bf16: %v[%d] from %v[%d]: %w", db.dt, db.n, sb.dt, sb.n, kernels.ErrShape)
	}
	narrowBF16(db.h, sb.f)
	return nil
}

// FromBF16 converts BFloat16 src to Float32 dst.
func (d *Device) FromBF16(dst, src kernels.Buffer) error {
	db, err1 := d.own(dst)
	sb, err2 := d.own(src)
	if err := firstErr(err1, err2); err != nil {
		return fmt.Errorf("from bf16: %w", err)
	}
	if db.dt != kernels.Float32 || sb.dt != kernels.BFloat16 || db.n != sb.n {
		return fmt.Errorf("from bf16: %v[%d] from %v[%d]: %w", db.dt, db.n, sb.dt, sb.n, kernels.ErrShape)
	}
	widenBF16(db.f, sb.h)
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// scratchSlices returns n reusable slice headers for one op's operands.
func (d *Device) scratchSlices(n int) [][]float32 {
	if n > len(d.slots) {
		panic("cpu: too many operands")
	}
	return d.slots[:n]
}
