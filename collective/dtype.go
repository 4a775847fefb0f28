package collective

import (
	"fmt"
	"unsafe"

	"github.com/ark-sched/ark/internal/bf16"
)

// DType is the element type of a Buffer.
type DType uint8

// Element types.
const (
	Float32 DType = iota + 1
	BFloat16
)

func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case BFloat16:
		return "bfloat16"
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// Size is the size of one element in bytes.
func (d DType) Size() int {
	switch d {
	case Float32:
		return 4
	case BFloat16:
		return 2
	}
	return 0
}

// ReduceOp is the reduction applied by AllReduce and ReduceScatter.
type ReduceOp uint8

// Reductions. Avg divides the sum by the world size once, at the end.
const (
	Sum ReduceOp = iota + 1
	Avg
	Max
)

func (o ReduceOp) String() string {
	switch o {
	case Sum:
		return "sum"
	case Avg:
		return "avg"
	case Max:
		return "max"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// BF16 is a bfloat16 value: the upper 16 bits of an IEEE float32.
type BF16 uint16

// Float32 widens b exactly.
func (b BF16) Float32() float32 { return bf16.ToFloat32(uint16(b)) }

// ToBF16 rounds f to the nearest bfloat16, ties to even; NaN stays NaN.
func ToBF16(f float32) BF16 { return BF16(bf16.FromFloat32(f)) }

// Buffer is a caller-owned array of elements viewed as bytes. The library
// reads and writes it in place and never keeps it past the operation.
type Buffer struct {
	dt DType
	n  int
	b  []byte
}

// Float32s wraps s.
func Float32s(s []float32) Buffer {
	if len(s) == 0 {
		return Buffer{dt: Float32}
	}
	return Buffer{dt: Float32, n: len(s), b: unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 4*len(s))}
}

// BFloat16s wraps s.
func BFloat16s(s []BF16) Buffer {
	if len(s) == 0 {
		return Buffer{dt: BFloat16}
	}
	return Buffer{dt: BFloat16, n: len(s), b: unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 2*len(s))}
}

// Bytes wraps raw memory holding n elements of dt (for example a pinned
// staging area shared with a proxy process). len(b) must be n*dt.Size().
func Bytes(dt DType, b []byte) (Buffer, error) {
	if dt.Size() == 0 || len(b)%dt.Size() != 0 {
		return Buffer{}, fmt.Errorf("wrap %d bytes as %v: %w", len(b), dt, ErrInvalid)
	}
	return Buffer{dt: dt, n: len(b) / dt.Size(), b: b}, nil
}

// Len is the number of elements.
func (b Buffer) Len() int { return b.n }

// DType is the element type.
func (b Buffer) DType() DType { return b.dt }

// Raw is the buffer's memory.
func (b Buffer) Raw() []byte { return b.b }

// Partition gives the half-open element range [lo, hi) of part i when n
// elements are split into parts nearly equal parts (the first n%parts get one
// more). ReduceScatter and AllGather place rank r's share at Partition(n, size, r).
func Partition(n, parts, i int) (lo, hi int) {
	q, r := n/parts, n%parts
	lo = i*q + min(i, r)
	hi = lo + q
	if i < r {
		hi++
	}
	return lo, hi
}

func f32s(b []byte) []float32 {
	if len(b) < 4 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}

func bf16s(b []byte) []BF16 {
	if len(b) < 2 {
		return nil
	}
	return unsafe.Slice((*BF16)(unsafe.Pointer(&b[0])), len(b)/2)
}

// reduceInto sets dst = dst (op) src elementwise. When div > 0 the result is
// then divided by div (the last step of Avg). bfloat16 is accumulated in
// float32 and rounded once per call.
func reduceInto(dt DType, op ReduceOp, dst, src []byte, div int) {
	switch dt {
	case Float32:
		d, s := f32s(dst), f32s(src)
		s = s[:len(d)]
		if op == Max {
			for i := range d {
				if s[i] > d[i] || s[i] != s[i] {
					d[i] = s[i]
				}
			}
		} else {
			i := 0
			for ; i+4 <= len(d); i += 4 {
				d[i] += s[i]
				d[i+1] += s[i+1]
				d[i+2] += s[i+2]
				d[i+3] += s[i+3]
			}
			for ; i < len(d); i++ {
				d[i] += s[i]
			}
		}
		if div > 0 {
			f := float32(div)
			for i := range d {
				d[i] /= f
			}
		}
	case BFloat16:
		d, s := bf16s(dst), bf16s(src)
		s = s[:len(d)]
		f := float32(div)
		for i := range d {
			a, b := d[i].Float32(), s[i].Float32()
			var r float32
			if op == Max {
				r = a
				if b > a || b != b {
					r = b
				}
			} else {
				r = a + b
			}
			if div > 0 {
				r /= f
			}
			d[i] = ToBF16(r)
		}
	}
}

// scaleInto divides every element of b by div (Avg without a reduction step).
func scaleInto(dt DType, b []byte, div int) {
	f := float32(div)
	switch dt {
	case Float32:
		d := f32s(b)
		for i := range d {
			d[i] /= f
		}
	case BFloat16:
		d := bf16s(b)
		for i := range d {
			d[i] = ToBF16(d[i].Float32() / f)
		}
	}
}
