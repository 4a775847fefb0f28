package cpu

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// dotAVX2 and axpyAVX2 (lora_amd64.s) are GatherLoRA's inner loops on 8
// lanes: a row's matrix-vector products through its adapter (scalar, they
// were a third of a 32-row decode step of gpt-tiny).
//
//go:noescape
func dotAVX2(x, y *float32, n int) float32

//go:noescape
func axpyAVX2(y, x *float32, n int, alpha float32)

// dot4AVX2 and axpy4AVX2 do four rows of A (or Bᵀ) per pass over x (or
// y): a row's down- and up-projections read its activations a quarter as
// often, in a quarter of the calls.
//
//go:noescape
func dot4AVX2(x, a *float32, n, lda int, u *[4]float32)

//go:noescape
func axpy4AVX2(y, bt *float32, n, ldb int, u *[4]float32)

var useLoRAAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// down sets u[k] = x·a[k*len(x):(k+1)*len(x)] for k < len(u).
func down(u, x, a []float32) {
	in := len(x)
	k := 0
	if n := in &^ 7; useLoRAAVX2 && n > 0 {
		var u4 [4]float32
		for ; k+4 <= len(u); k += 4 {
			dot4AVX2(unsafe.SliceData(x), &a[k*in], n, in, &u4)
			for q := range 4 {
				u[k+q] = u4[q] + dotGo(x[n:], a[(k+q)*in+n:(k+q+1)*in])
			}
		}
	}
	for ; k < len(u); k++ {
		u[k] = dot(x, a[k*in:(k+1)*in])
	}
}

// up adds sum over k of u[k]*bt[k*len(y):(k+1)*len(y)] into y.
func up(y, bt, u []float32) {
	out := len(y)
	k := 0
	if n := out &^ 7; useLoRAAVX2 && n > 0 {
		var u4 [4]float32
		for ; k+4 <= len(u); k += 4 {
			copy(u4[:], u[k:k+4])
			axpy4AVX2(unsafe.SliceData(y), &bt[k*out], n, out, &u4)
			for q := range 4 {
				axpyGo(y[n:], bt[(k+q)*out+n:(k+q+1)*out], u[k+q])
			}
		}
	}
	for ; k < len(u); k++ {
		axpy(y, bt[k*out:(k+1)*out], u[k])
	}
}

// dot is x·y over len(x) elements.
func dot(x, y []float32) float32 {
	y = y[:len(x)]
	n := 0
	if useLoRAAVX2 {
		n = len(x) &^ 7
	}
	var s float32
	if n > 0 {
		s = dotAVX2(unsafe.SliceData(x), unsafe.SliceData(y), n)
	}
	return s + dotGo(x[n:], y[n:])
}

// axpy is y += alpha·x.
func axpy(y, x []float32, alpha float32) {
	x = x[:len(y)]
	n := 0
	if useLoRAAVX2 {
		n = len(y) &^ 7
	}
	if n > 0 {
		axpyAVX2(unsafe.SliceData(y), unsafe.SliceData(x), n, alpha)
	}
	axpyGo(y[n:], x[n:], alpha)
}
