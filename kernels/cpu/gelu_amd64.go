package cpu

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// geluAVX512 and geluBackAVX512 (gelu_amd64.s) do 16 floats at a time with
// a vectorised Cephes exp: gelu(x) = x * sigmoid(2u), u = sqrt(2/pi)(x +
// 0.044715x^3), which is the tanh form rewritten.
//
//go:noescape
func geluAVX512(dst, src *float32, n int)

//go:noescape
func geluBackAVX512(din, src, dout *float32, n int)

//go:noescape
func expShiftAVX512(dst, src *float32, n int, shift float32, lanes *[16]float32)

// expShiftAVX2 (gelu_avx2_amd64.s) is expShiftAVX512 on 8 lanes, for CPUs
// without AVX-512 (where the scalar expf was a fifth of a decode step's
// cached attention).
//
//go:noescape
func expShiftAVX2(dst, src *float32, n int, shift float32, lanes *[8]float32)

// geluAVX2 (gelu_avx2_amd64.s) is geluAVX512 on 8 lanes, for CPUs without
// AVX-512 (where the scalar expf made GELU a fifth of a decode step).
//
//go:noescape
func geluAVX2(dst, src *float32, n int)

var (
	useGELUAVX512 = cpu.X86.HasAVX512F
	useGELUAVX2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA
)

// expShift sets dst[i] = exp(src[i] - shift) and returns their sum in
// float64 (summed in 16 or 8 float32 lanes on the vector paths). Arguments below
// -87 give at most exp(-87) = 1.6e-38 (the vector path clamps, expf gives
// 0); shift is meant to be the maximum, so the largest term is 1.
func expShift(dst, src []float32, shift float32) float64 {
	var sum float64
	n := 0
	if useGELUAVX512 {
		n = len(src) &^ 15
	}
	if n > 0 {
		_ = dst[n-1]
		var lanes [16]float32
		expShiftAVX512(unsafe.SliceData(dst), unsafe.SliceData(src), n, shift, &lanes)
		for _, l := range lanes {
			sum += float64(l)
		}
	} else if n = len(src) &^ 7; useGELUAVX2 && n > 0 {
		_ = dst[n-1]
		var lanes [8]float32
		expShiftAVX2(unsafe.SliceData(dst), unsafe.SliceData(src), n, shift, &lanes)
		for _, l := range lanes {
			sum += float64(l)
		}
	} else {
		n = 0
	}
	for i := n; i < len(src); i++ {
		e := expf(src[i] - shift)
		dst[i] = e
		sum += float64(e)
	}
	return sum
}

// geluVec does out = gelu(in) and returns how many leading elements it did
// (a multiple of 16 with AVX-512, of 8 with AVX2); the caller finishes the
// tail.
func geluVec(out, in []float32) int {
	if !useGELUAVX512 {
		return geluVecAVX2(out, in)
	}
	n := len(in) &^ 15
	if n == 0 {
		return 0
	}
	_ = out[n-1]
	geluAVX512(unsafe.SliceData(out), unsafe.SliceData(in), n)
	return n
}

// geluVecAVX2 is geluVec's 8-lane path (a multiple of 8 done).
func geluVecAVX2(out, in []float32) int {
	n := len(in) &^ 7
	if !useGELUAVX2 || n == 0 {
		return 0
	}
	_ = out[n-1]
	geluAVX2(unsafe.SliceData(out), unsafe.SliceData(in), n)
	return n
}

// geluBackVec does din += dout*gelu'(in) on a leading multiple of 16.
func geluBackVec(din, in, dout []float32) int {
	n := len(in) &^ 15
	if !useGELUAVX512 || n == 0 {
		return 0
	}
	_, _ = din[n-1], dout[n-1]
	geluBackAVX512(unsafe.SliceData(din), unsafe.SliceData(in), unsafe.SliceData(dout), n)
	return n
}
