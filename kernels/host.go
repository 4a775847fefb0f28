package kernels

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/ark-sched/ark/internal/bf16"
)

func f32Bytes(s []float32) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 4*len(s))
}

func i32Bytes(s []int32) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 4*len(s))
}

// WriteFloat32 copies src to a Float32 buffer of the same length.
func WriteFloat32(d Memory, dst Buffer, src []float32) error {
	if dst == nil || dst.DType() != Float32 {
		return fmt.Errorf("write float32: destination is not float32: %w", ErrShape)
	}
	return d.CopyIn(dst, f32Bytes(src))
}

// ReadFloat32 copies a Float32 buffer into dst of the same length.
func ReadFloat32(d Memory, dst []float32, src Buffer) error {
	if src == nil || src.DType() != Float32 {
		return fmt.Errorf("read float32: source is not float32: %w", ErrShape)
	}
	return d.CopyOut(f32Bytes(dst), src)
}

// WriteInt32 copies src to an Int32 buffer of the same length.
func WriteInt32(d Memory, dst Buffer, src []int32) error {
	if dst == nil || dst.DType() != Int32 {
		return fmt.Errorf("write int32: destination is not int32: %w", ErrShape)
	}
	return d.CopyIn(dst, i32Bytes(src))
}

// ReadInt32 copies an Int32 buffer into dst of the same length.
func ReadInt32(d Memory, dst []int32, src Buffer) error {
	if src == nil || src.DType() != Int32 {
		return fmt.Errorf("read int32: source is not int32: %w", ErrShape)
	}
	return d.CopyOut(i32Bytes(dst), src)
}

// Upload allocates a Float32 buffer holding src.
func Upload(d Memory, src []float32) (Buffer, error) {
	b, err := d.Alloc(Float32, len(src))
	if err != nil {
		return nil, err
	}
	if err := WriteFloat32(d, b, src); err != nil {
		_ = d.Free(b)
		return nil, err
	}
	return b, nil
}

// Download returns a new host copy of a Float32 buffer.
func Download(d Memory, src Buffer) ([]float32, error) {
	out := make([]float32, src.Len())
	return out, ReadFloat32(d, out, src)
}

// ToBF16 rounds f to bfloat16 (nearest even; NaN stays NaN).
func ToBF16(f float32) uint16 { return bf16.FromFloat32(f) }

// FromBF16 widens a bfloat16 to float32 exactly.
func FromBF16(h uint16) float32 { return bf16.ToFloat32(h) }

// ClipGradNorm computes the global L2 norm of grads (several buffers, as
// one vector) and, when it exceeds maxNorm > 0, scales every buffer by
// maxNorm/norm. acc is a 1-element Float32 scratch buffer. It returns the
// norm before clipping. It synchronises once (to read the norm).
func ClipGradNorm(d Device, acc Buffer, grads []Buffer, maxNorm float32) (float32, error) {
	if err := d.Fill(acc, 0); err != nil {
		return 0, fmt.Errorf("clip grad norm: %w", err)
	}
	for i, g := range grads {
		if err := d.SumSquares(acc, g); err != nil {
			return 0, fmt.Errorf("clip grad norm: buffer %d: %w", i, err)
		}
	}
	var ss [1]float32
	if err := ReadFloat32(d, ss[:], acc); err != nil {
		return 0, fmt.Errorf("clip grad norm: %w", err)
	}
	norm := float32(math.Sqrt(float64(ss[0])))
	if maxNorm > 0 && norm > maxNorm {
		s := maxNorm / (norm + 1e-6)
		for i, g := range grads {
			if err := d.Scale(g, g, s); err != nil {
				return norm, fmt.Errorf("clip grad norm: scale buffer %d: %w", i, err)
			}
		}
	}
	return norm, nil
}
