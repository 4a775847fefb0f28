package cpu

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// kvScoresAVX2 and kvWeightedAVX2 (kvattn_amd64.s) are CachedAttention's
// two products on 8 lanes: the scalar loops were most of a decode step's
// attention, a fifth of gpt-tiny's serving CPU at 32 streams. There is no
// AVX-512 form: a head is 16 to 64 floats (one to four vectors of 16,
// too few to pay for the wider reductions), and AMD's AVX-512 runs a
// 512-bit op as two 256-bit halves anyway.
//
//go:noescape
func kvScoresAVX2(sc, q, keys *float32, n, hs int, scale float32)

//go:noescape
func kvWeightedAVX2(out, w, vals *float32, n, hs int, scale float32)

// kvWeighted64AVX2 is kvWeightedAVX2 for heads of whole 64-float blocks
// (GPT-2's 64), each row of values read once, in order.
//
//go:noescape
func kvWeighted64AVX2(out, w, vals *float32, n, hs int, scale float32)

var useKVAttnAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// kvScores sets sc[t] = scale * q·keys[t] for the len(sc) keys of len(q):
// whole groups of four keys in assembly when the head is whole vectors of
// 8, the rest in Go.
func kvScores(sc, q, keys []float32, scale float32) {
	hs, n := len(q), len(sc)
	t := 0
	if n4 := n &^ 3; useKVAttnAVX2 && hs%8 == 0 && n4 > 0 {
		_ = keys[n4*hs-1] // the asm reads this far
		kvScoresAVX2(&sc[0], &q[0], &keys[0], n4, hs, scale)
		t = n4
	}
	if t < n {
		kvScoresGo(sc[t:], q, keys[t*hs:n*hs], scale)
	}
}

// kvWeighted sets out = scale * sum over t of w[t]*vals[t], vals holding
// len(w) rows of len(out).
func kvWeighted(out, w, vals []float32, scale float32) {
	hs, n := len(out), len(w)
	if useKVAttnAVX2 && hs%64 == 0 && n > 0 {
		_ = vals[n*hs-1]
		kvWeighted64AVX2(&out[0], unsafe.SliceData(w), &vals[0], n, hs, scale)
		return
	}
	if useKVAttnAVX2 && hs%8 == 0 && n > 0 {
		_ = vals[n*hs-1]
		kvWeightedAVX2(&out[0], unsafe.SliceData(w), &vals[0], n, hs, scale)
		return
	}
	kvWeightedGo(out, w, vals, scale)
}
