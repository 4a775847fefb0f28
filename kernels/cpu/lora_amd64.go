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

// loraRowAVX512 is one row's whole update on 16 lanes (lora_amd64.s): the
// rank's dot products and the axpys into y in one call, where down and up
// made two calls per four rank rows plus Go's tails and the scaling
// (GatherLoRA ran at about 11 GFLOP/s on gpt-tiny's shapes through them).
//
//go:noescape
func loraRowAVX512(y, x, a, bt *float32, in, out, rank int, scale float32)

var (
	useLoRAAVX2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	useLoRAAVX512 = cpu.X86.HasAVX512F
)

// loraRow adds scale·(x·aᵀ)·bt into y, a and bt holding len(u) rows (the
// rank; u is scratch): in one AVX-512 call for the rank's multiple of 4
// when the widths are multiples of 16, the rest through down and up.
func loraRow(y, x, a, bt, u []float32, scale float32) {
	in, out, r := len(x), len(y), len(u)
	if r4 := r &^ 3; useLoRAAVX512 && r4 > 0 && in > 0 && out > 0 && in%16 == 0 && out%16 == 0 {
		_, _ = a[r*in-1], bt[r*out-1] // the asm reads this far
		loraRowAVX512(&y[0], &x[0], &a[0], &bt[0], in, out, r4, scale)
		if r4 < r {
			loraRowGo(y, x, a[r4*in:], bt[r4*out:], u[:r-r4], scale)
		}
		return
	}
	loraRowGo(y, x, a, bt, u, scale)
}

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
