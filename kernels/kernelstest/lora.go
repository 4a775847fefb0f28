package kernelstest

import (
	"errors"

	"github.com/ark-sched/ark/kernels"
)

// refGatherLoRA is GatherLoRA in float64: y0 plus each row's own adapter
// update.
func refGatherLoRA(y0, x, a, bt []float64, slots []int32, scales []float64, p kernels.LoRAArgs) []float64 {
	y := append([]float64(nil), y0...)
	for i, s := range slots {
		if s < 0 {
			continue
		}
		for k := range p.Rank {
			var u float64
			for j := range p.In {
				u += x[i*p.In+j] * a[(int(s)*p.Rank+k)*p.In+j]
			}
			for o := range p.Out {
				y[i*p.Out+o] += scales[s] * u * bt[(int(s)*p.Rank+k)*p.Out+o]
			}
		}
	}
	return y
}

// testGatherLoRA checks the optional batched multi-adapter kernel; a
// device without it passes (the callers fall back to MatMuls per run of
// rows that share an adapter).
func testGatherLoRA(e *env) {
	g, ok := e.d.(kernels.GatheredLoRA)
	if !ok {
		e.Logf("%s has no GatherLoRA: callers use MatMul per adapter", e.d.Name())
		return
	}
	for _, p := range []kernels.LoRAArgs{
		{Rows: 1, In: 8, Out: 24, Rank: 2, Slots: 1},
		{Rows: 37, In: 64, Out: 192, Rank: 8, Slots: 5},
		{Rows: 300, In: 33, Out: 17, Rank: 3, Slots: 4},
		{Rows: 9, In: 20, Out: 44, Rank: 5, Slots: 3}, // four-row blocks and tails
		// Several blocks along both of CUDA's other grid axes (rank groups
		// of 8, column blocks of 256), neither filled: a decode batch of 64.
		{Rows: 64, In: 160, Out: 600, Rank: 20, Slots: 9},
		// Widths of whole 16-lane vectors and a rank of four-row groups
		// plus a remainder (the CPU's fused AVX-512 row, then its tail).
		{Rows: 33, In: 128, Out: 512, Rank: 6, Slots: 4},
	} {
		x, a, bt := e.randn(p.Rows*p.In), e.randn(p.Slots*p.Rank*p.In), e.randn(p.Slots*p.Rank*p.Out)
		y0, scales := e.randn(p.Rows*p.Out), e.randn(p.Slots)
		slots := make([]int32, p.Rows)
		for i := range slots {
			slots[i] = int32(e.rng.IntN(p.Slots+1)) - 1 // -1: the base alone
		}
		y := e.up(y0)
		e.must(g.GatherLoRA(y, e.up(x), e.up(a), e.up(bt), e.upInt(slots), e.up(scales), p))
		e.close("gather lora", e.down(y), refGatherLoRA(f64(y0), f64(x), f64(a), f64(bt), slots, f64(scales), p), 1e-4)
	}
	// Slots of their own ranks under a larger Rank, the rows past each
	// zero as LoRAArgs.Ranks promises (a backend may skip them; one that
	// ignores Ranks gets the same answer), including a slot of rank 0.
	for _, p := range []kernels.LoRAArgs{
		{Rows: 40, In: 64, Out: 192, Rank: 16, Slots: 4, Ranks: []int32{8, 16, 0, 5}},
		{Rows: 9, In: 20, Out: 44, Rank: 6, Slots: 3, Ranks: []int32{2, 6, 1}},
	} {
		x, a, bt := e.randn(p.Rows*p.In), e.randn(p.Slots*p.Rank*p.In), e.randn(p.Slots*p.Rank*p.Out)
		for s, r := range p.Ranks {
			clear(a[(s*p.Rank+int(r))*p.In : (s+1)*p.Rank*p.In])
			clear(bt[(s*p.Rank+int(r))*p.Out : (s+1)*p.Rank*p.Out])
		}
		y0, scales := e.randn(p.Rows*p.Out), e.randn(p.Slots)
		slots := make([]int32, p.Rows)
		for i := range slots {
			slots[i] = int32(i%(p.Slots+1)) - 1
		}
		y := e.up(y0)
		e.must(g.GatherLoRA(y, e.up(x), e.up(a), e.up(bt), e.upInt(slots), e.up(scales), p))
		e.close("gather lora, slot ranks", e.down(y), refGatherLoRA(f64(y0), f64(x), f64(a), f64(bt), slots, f64(scales), p), 1e-4)
	}
	// A slot past Slots: the CPU reports it; a device that cannot check
	// without a copy to the host (CUDA) must leave the row alone rather
	// than read past the stacked factors.
	p := kernels.LoRAArgs{Rows: 2, In: 4, Out: 4, Rank: 1, Slots: 2}
	x, a, bt, y0, scales := e.randn(8), e.randn(8), e.randn(8), e.randn(8), e.randn(2)
	y := e.up(y0)
	err := g.GatherLoRA(y, e.up(x), e.up(a), e.up(bt), e.upInt([]int32{0, 2}), e.up(scales), p)
	switch {
	case err == nil && e.d.Name() != "cpu":
		want := refGatherLoRA(f64(y0), f64(x), f64(a), f64(bt), []int32{0, -1}, f64(scales), p)
		e.close("slot out of range (skipped)", e.down(y), want, 1e-5)
	case !errors.Is(err, kernels.ErrArgument):
		e.Fatalf("slot out of range: %v, want ErrArgument (or, unchecked, the row left alone)", err)
	}
	if err := g.GatherLoRA(e.alloc(8), e.alloc(7), e.alloc(8), e.alloc(8), e.upInt([]int32{0, 1}), e.alloc(2), p); !errors.Is(err, kernels.ErrShape) {
		e.Fatalf("short x: %v, want ErrShape", err)
	}
	for _, c := range []struct {
		ranks []int32
		want  error
	}{
		{[]int32{1}, kernels.ErrShape},        // one rank for two slots
		{[]int32{1, 2}, kernels.ErrArgument},  // above Rank
		{[]int32{-1, 0}, kernels.ErrArgument}, // negative
	} {
		q := p
		q.Ranks = c.ranks
		if err := g.GatherLoRA(e.alloc(8), e.alloc(8), e.alloc(8), e.alloc(8), e.upInt([]int32{0, 1}), e.alloc(2), q); !errors.Is(err, c.want) {
			e.Fatalf("slot ranks %v: %v, want %v", c.ranks, err, c.want)
		}
	}
}
