package cpu

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSplit checks how a block of rows is cut into micro-kernel panels:
// whole, fewest rows computed, and under mr rows unchanged (one padded
// panel).
func TestSplit(t *testing.T) {
	six := microKernel{mr: 6, nr: 16, edge: &microKernel{mr: 4, nr: 16}}
	for _, c := range []struct {
		mk             microKernel
		mb, big, small int
	}{
		{six, 1, 1, 0},  // concurrency 1: one padded 6-row panel
		{six, 5, 1, 0},  // under mr
		{six, 6, 1, 0},  // whole
		{six, 7, 1, 1},  // 6 + 4 (10 rows), not 12
		{six, 8, 0, 2},  // 4 + 4
		{six, 10, 1, 1}, // 6 + 4
		{six, 32, 4, 2}, // a decode step: 24 + 8, not 36
		{six, 33, 5, 1}, // 30 + 4
		{six, 35, 6, 0}, // 36: no fewer rows with edges
		{six, 96, 16, 0},
		{genericKernel, 5, 2, 0}, // no edge kernel
		{genericKernel, 32, 8, 0},
	} {
		big, small := c.mk.split(c.mb)
		if big != c.big || small != c.small {
			t.Errorf("split(%d) with mr %d: %d big, %d small; want %d, %d", c.mb, c.mk.mr, big, small, c.big, c.small)
		}
		rows := big * c.mk.mr
		if small > 0 {
			rows += small * c.mk.edge.mr
		}
		if rows < c.mb || rows > mcBlock+c.mk.mr {
			t.Errorf("split(%d): %d rows", c.mb, rows)
		}
	}
}

// TestRowAloneEqualsBatched: a row of C is bit for bit the same computed
// alone (microKernel.row, or a padded panel where a kernel has none), with
// a few others (padded or edge panels) or in a decode
// step's 32 (6- and 4-row panels), with every kernel this CPU runs:
// batched decoding must equal decoding alone, token for token.
func TestRowAloneEqualsBatched(t *testing.T) {
	d := New(1)
	defer d.Close()
	const rows, n, k = 32, 70, 600 // a partial last panel, three k blocks
	rng := rand.New(rand.NewPCG(1, 2))
	a, b := make([]float32, rows*k), make([]float32, n*k)
	for i := range a {
		a[i] = float32(rng.NormFloat64())
	}
	for i := range b {
		b[i] = float32(rng.NormFloat64())
	}
	for _, mk := range availableKernels() {
		mul := func(x []float32, m int) []float32 {
			c := make([]float32, m*n)
			o := gemmOp{a: x, b: b, c: c, m: m, n: n, k: k, transB: true, alpha: 1, beta: 1, lda: k, ldb: k, ldc: n}
			d.matmul(&o, mk)
			return c
		}
		all := mul(a, rows)
		for _, m := range []int{1, 2, 3, 4, 5, 7} {
			for _, r0 := range []int{0, rows - m} {
				part := mul(a[r0*k:(r0+m)*k], m)
				for i, v := range part {
					if w := all[r0*n+i]; math.Float32bits(v) != math.Float32bits(w) {
						t.Fatalf("%s: rows %d..%d alone, C[%d][%d] = %v; in %d rows, %v", mk.name, r0, r0+m-1, r0+i/n, i%n, v, rows, w)
					}
				}
			}
		}
	}
}
