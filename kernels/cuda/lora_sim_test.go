package cuda

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/ark-sched/ark/kernels"
	"github.com/ark-sched/ark/kernels/cpu"
)

// The gathered LoRA kernels have never run on a GPU where they were written
// (no GPU there; TestConformance runs them wherever one exists). These tests
// are the CPU-side check of their indexing: a Go port of lora_shrink and
// lora_expand, statement for statement, run for every (block, thread) of the
// grids that loraLaunch gives the real launch, with a warp's lanes run side
// by side so the shuffle tree is the kernel's. Go's bounds checks catch a
// read or write outside a buffer; a write counter catches two threads on one
// output; the results are compared with the CPU backend and a float64 loop.
// TestLoRAArgsMatchSource checks the launch's argument order against the
// kernels' parameter lists. What none of this can catch: compiler or driver
// behaviour, a fault only real hardware shows, and timing.

// simShrink is lora_shrink over shrink's grid.
func simShrink(t *testing.T, g dims, u, x, a []float32, slots []int32, scales []float32, in, rank, nslots int, writes []int) {
	threads := int(g.block[0])
	for bx := range int(g.grid[0]) {
		for by := range int(g.grid[1]) {
			for w := range threads / warpSize {
				var acc [warpSize]float32
				exited := 0
				var row, col int
				for lane := range warpSize {
					threadIdx := w*warpSize + lane
					// kernel body, up to the shuffle
					i := bx
					k := by*loraWarps + threadIdx/32
					ln := threadIdx % 32
					s := int(slots[i])
					if s < 0 || s >= nslots || k >= rank {
						exited++
						continue
					}
					xr := i * in
					ar := (s*rank + k) * in
					var sum float32
					for j := ln; j < in; j += 32 {
						sum += x[xr+j] * a[ar+j]
					}
					acc[ln] = sum
					row, col = i, k
				}
				if exited == warpSize {
					continue
				}
				if exited != 0 {
					t.Fatalf("shrink block (%d,%d) warp %d: %d of 32 lanes exited before the full-mask shuffle", bx, by, w, exited)
				}
				// for (off = 16; off > 0; off >>= 1) acc += __shfl_down_sync(~0, acc, off):
				// every lane reads its partner's value from before the step;
				// a partner past lane 31 gives the lane its own value.
				for off := 16; off > 0; off >>= 1 {
					prev := acc
					for lane := range warpSize {
						src := lane
						if lane+off < warpSize {
							src = lane + off
						}
						acc[lane] = prev[lane] + prev[src]
					}
				}
				// if (lane == 0) u[i*rank + k] = scales[s]*acc
				u[row*rank+col] = scales[slots[row]] * acc[0]
				writes[row*rank+col]++
			}
		}
	}
}

// simExpand is lora_expand over expand's grid.
func simExpand(g dims, y, u, bt []float32, slots []int32, out, rank, nslots int, writes []int) {
	for bx := range int(g.grid[0]) {
		for by := range int(g.grid[1]) {
			for threadIdx := range int(g.block[0]) {
				i := bx
				o := by*loraExpand + threadIdx
				s := int(slots[i])
				if s < 0 || s >= nslots || o >= out {
					continue
				}
				ur := i * rank
				b := s*rank*out + o
				var acc float32
				for k := range rank {
					acc += u[ur+k] * bt[b+k*out]
				}
				y[i*out+o] += acc
				writes[i*out+o]++
			}
		}
	}
}

// refLoRA is GatherLoRA in float64; rows whose slot is negative or past
// nslots are left alone (what the kernels do).
func refLoRA(y0, x, a, bt []float32, slots []int32, scales []float32, p kernels.LoRAArgs) []float64 {
	y := make([]float64, len(y0))
	for i, v := range y0 {
		y[i] = float64(v)
	}
	for i, s32 := range slots {
		s := int(s32)
		if s < 0 || s >= p.Slots {
			continue
		}
		for k := range p.Rank {
			var u float64
			for j := range p.In {
				u += float64(x[i*p.In+j]) * float64(a[(s*p.Rank+k)*p.In+j])
			}
			for o := range p.Out {
				y[i*p.Out+o] += float64(scales[s]) * u * float64(bt[(s*p.Rank+k)*p.Out+o])
			}
		}
	}
	return y
}

func randn(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		for x[i] == 0 {
			x[i] = float32(r.NormFloat64())
		}
	}
	return x
}

// TestLoRAKernelSimulation runs the ported kernels on the conformance
// suite's shapes and decode-time ones (1-64 rows, rank 8-64, GPT widths),
// with ranks, widths and rows that divide neither the warp nor the blocks.
func TestLoRAKernelSimulation(t *testing.T) {
	for _, c := range []struct {
		p       kernels.LoRAArgs
		badSlot bool // some rows use a slot >= Slots (the kernels skip them)
	}{
		{p: kernels.LoRAArgs{Rows: 1, In: 8, Out: 24, Rank: 2, Slots: 1}},
		{p: kernels.LoRAArgs{Rows: 37, In: 64, Out: 192, Rank: 8, Slots: 5}},
		{p: kernels.LoRAArgs{Rows: 300, In: 33, Out: 17, Rank: 3, Slots: 4}},
		{p: kernels.LoRAArgs{Rows: 9, In: 20, Out: 44, Rank: 5, Slots: 3}},
		{p: kernels.LoRAArgs{Rows: 1, In: 256, Out: 768, Rank: 8, Slots: 4}},      // one token, qkv
		{p: kernels.LoRAArgs{Rows: 32, In: 1024, Out: 256, Rank: 16, Slots: 100}}, // mlp proj
		{p: kernels.LoRAArgs{Rows: 64, In: 384, Out: 1536, Rank: 64, Slots: 8}},   // fc, rank 64
		{p: kernels.LoRAArgs{Rows: 13, In: 100, Out: 513, Rank: 13, Slots: 7}, badSlot: true},
	} {
		p := c.p
		t.Run(fmt.Sprintf("%dx%dx%d_r%d_s%d", p.Rows, p.In, p.Out, p.Rank, p.Slots), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(p.Rows), uint64(p.Rank)))
			x, a, bt := randn(r, p.Rows*p.In), randn(r, p.Slots*p.Rank*p.In), randn(r, p.Slots*p.Rank*p.Out)
			y0, scales := randn(r, p.Rows*p.Out), randn(r, p.Slots)
			slots := make([]int32, p.Rows)
			for i := range slots {
				slots[i] = int32(r.IntN(p.Slots+1)) - 1
			}
			slots[0] = int32(p.Slots - 1) // the last slot's factors end the buffers
			if p.Rows > 2 {
				slots[1] = -7 // any negative slot is the base
			}
			if c.badSlot {
				slots[2], slots[p.Rows-1] = int32(p.Slots), 1<<30
			}
			shrink, expand, err := loraLaunch(p)
			if err != nil {
				t.Fatal(err)
			}
			u := make([]float32, p.Rows*p.Rank)
			for i := range u {
				u[i] = float32(math.NaN()) // a row the expand reads must have been written
			}
			y := append([]float32(nil), y0...)
			uw, yw := make([]int, len(u)), make([]int, len(y))
			simShrink(t, shrink, u, x, a, slots, scales, p.In, p.Rank, p.Slots, uw)
			simExpand(expand, y, u, bt, slots, p.Out, p.Rank, p.Slots, yw)

			for i, s := range slots {
				used := s >= 0 && int(s) < p.Slots
				for k := range p.Rank {
					if want := map[bool]int{true: 1}[used]; uw[i*p.Rank+k] != want {
						t.Fatalf("u[%d,%d] (slot %d) written %d times, want %d", i, k, s, uw[i*p.Rank+k], want)
					}
				}
				for o := range p.Out {
					if want := map[bool]int{true: 1}[used]; yw[i*p.Out+o] != want {
						t.Fatalf("y[%d,%d] (slot %d) written %d times, want %d", i, o, s, yw[i*p.Out+o], want)
					}
				}
			}
			want := refLoRA(y0, x, a, bt, slots, scales, p)
			closeTo(t, "simulated kernels vs float64", y, want, 1e-4)
			for i, s := range slots {
				if s < 0 || int(s) >= p.Slots {
					for o := range p.Out {
						if y[i*p.Out+o] != y0[i*p.Out+o] {
							t.Fatalf("row %d (slot %d) changed at column %d", i, s, o)
						}
					}
				}
			}

			// Against the CPU backend, the one the GPU must match (it
			// rejects slots past Slots, so those rows go to -1 there and in
			// the simulation alike).
			if c.badSlot {
				return
			}
			d := cpu.New(1)
			defer d.Close()
			up := func(v []float32) kernels.Buffer {
				b, err := kernels.Upload(d, v)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			sb, err := d.Alloc(kernels.Int32, p.Rows)
			if err != nil {
				t.Fatal(err)
			}
			if err := kernels.WriteInt32(d, sb, slots); err != nil {
				t.Fatal(err)
			}
			yb := up(y0)
			if err := d.GatherLoRA(yb, up(x), up(a), up(bt), sb, up(scales), p); err != nil {
				t.Fatal(err)
			}
			got, err := kernels.Download(d, yb)
			if err != nil {
				t.Fatal(err)
			}
			cpu64 := make([]float64, len(got))
			for i, v := range got {
				cpu64[i] = float64(v)
			}
			closeTo(t, "simulated kernels vs CPU backend", y, cpu64, 1e-4)
		})
	}
}

// closeTo fails unless |got-want| <= tol*(1+|want|) everywhere (the
// conformance suite's rule).
func closeTo(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	for i := range got {
		if d := math.Abs(float64(got[i]) - want[i]); !(d <= tol*(1+math.Abs(want[i]))) {
			t.Fatalf("%s: [%d] = %.7g, want %.7g", what, i, got[i], want[i])
		}
	}
}

// TestLoRALaunch: the grids cover every (row, rank) and (row, column) with
// whole warps, and a shape past CUDA's grid.y limit is refused before a
// launch.
func TestLoRALaunch(t *testing.T) {
	for _, c := range []struct {
		p              kernels.LoRAArgs
		shrink, expand [3]uint32
	}{
		{kernels.LoRAArgs{Rows: 1, In: 8, Out: 24, Rank: 2, Slots: 1}, [3]uint32{1, 1, 1}, [3]uint32{1, 1, 1}},
		{kernels.LoRAArgs{Rows: 64, In: 4096, Out: 4096, Rank: 64, Slots: 8}, [3]uint32{64, 8, 1}, [3]uint32{64, 16, 1}},
		{kernels.LoRAArgs{Rows: 5, In: 1, Out: 257, Rank: 9, Slots: 1}, [3]uint32{5, 2, 1}, [3]uint32{5, 2, 1}},
	} {
		s, e, err := loraLaunch(c.p)
		if err != nil || s.grid != c.shrink || e.grid != c.expand {
			t.Errorf("%+v: shrink %v expand %v (%v); want %v, %v", c.p, s.grid, e.grid, err, c.shrink, c.expand)
		}
		if s.block != [3]uint32{loraWarps * warpSize, 1, 1} || e.block != [3]uint32{loraExpand, 1, 1} {
			t.Errorf("%+v: blocks %v, %v", c.p, s.block, e.block)
		}
	}
	for _, p := range []kernels.LoRAArgs{
		{Rows: 1, In: 8, Out: maxGridY*loraExpand + 1, Rank: 8, Slots: 1},
		{Rows: 1, In: 8, Out: 8, Rank: maxGridY*loraWarps + 1, Slots: 1},
	} {
		if _, _, err := loraLaunch(p); !errors.Is(err, kernels.ErrArgument) {
			t.Errorf("out %d rank %d: %v, want ErrArgument", p.Out, p.Rank, err)
		}
	}
}

// TestLoRAConstantsMatchSource: the geometry above uses the block sizes
// kernels.cu was written for.
func TestLoRAConstantsMatchSource(t *testing.T) {
	src, err := os.ReadFile("kernels.cu")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"LORA_WARPS": loraWarps, "LORA_EXPAND": loraExpand} {
		m := regexp.MustCompile(`(?m)^#define ` + name + ` +(\d+)`).FindSubmatch(src)
		if m == nil {
			t.Errorf("kernels.cu does not #define %s", name)
			continue
		}
		if got, _ := strconv.Atoi(string(m[1])); got != want {
			t.Errorf("kernels.cu: %s is %d, lora.go uses %d", name, got, want)
		}
	}
}

// loraKernelsSHA256 is the SHA-256 of lora_shrink's and lora_expand's text
// in kernels.cu, from `extern "C"` to the closing brace, the version the
// Go port above follows.
const loraKernelsSHA256 = "d6b269aaf7472085b41579c0b726d7cb23e8e45e2adf8723f6b2d7c98fd6c052"

// TestLoRAPortIsCurrent: the port above can only vouch for the kernels it
// copies. Editing either kernel fails this test until the port is brought
// in line and the hash updated.
func TestLoRAPortIsCurrent(t *testing.T) {
	src, err := os.ReadFile("kernels.cu")
	if err != nil {
		t.Fatal(err)
	}
	var text []byte
	for _, name := range []string{"lora_shrink", "lora_expand"} {
		m := regexp.MustCompile(`(?s)extern "C" __global__ void ` + name + `\(.*?\n}\n`).Find(src)
		if m == nil {
			t.Fatalf("kernel %s not found in kernels.cu", name)
		}
		text = append(text, m...)
	}
	if got := sha256Hex(text); got != loraKernelsSHA256 {
		t.Errorf("lora_shrink/lora_expand in kernels.cu changed (sha256 %s, the port follows %s): update simShrink/simExpand to match, then loraKernelsSHA256", got, loraKernelsSHA256)
	}
}

// TestLoRAArgsMatchSource: the launch passes lora_shrink's and
// lora_expand's arguments in the order, and with the values, that
// kernels.cu's parameter lists name (the port above takes the parameters
// by name, so it cannot see an order mistake in the launch).
func TestLoRAArgsMatchSource(t *testing.T) {
	src, err := os.ReadFile("kernels.cu")
	if err != nil {
		t.Fatal(err)
	}
	p := kernels.LoRAArgs{Rows: 3, In: 11, Out: 12, Rank: 13, Slots: 14}
	const y, x, a, bt, slots, scales, u = 101, 102, 103, 104, 105, 106, 107
	want := map[string]uint64{"y": y, "x": x, "a": a, "bt": bt, "slots": slots, "scales": scales, "u": u,
		"in": 11, "out": 12, "rank": 13, "nslots": 14}
	for name, args := range map[string][]arg{
		"lora_shrink": loraShrinkArgs(u, x, a, slots, scales, p),
		"lora_expand": loraExpandArgs(y, u, bt, slots, p),
	} {
		m := regexp.MustCompile(`__global__ void ` + name + `\(([^)]*)\)`).FindSubmatch(src)
		if m == nil {
			t.Fatalf("kernel %s not found in kernels.cu", name)
		}
		var params []string
		for _, decl := range regexp.MustCompile(`\s*,\s*`).Split(string(m[1]), -1) {
			f := regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*$`).FindString(decl)
			params = append(params, f)
		}
		if len(params) != len(args) {
			t.Fatalf("%s: kernels.cu has %d parameters %v, the launch passes %d", name, len(params), params, len(args))
		}
		for i, a := range args {
			if a.name != params[i] {
				t.Errorf("%s: argument %d is %q, kernels.cu's parameter is %q", name, i, a.name, params[i])
			}
			if a.v != want[a.name] {
				t.Errorf("%s: %s = %d, want %d", name, a.name, a.v, want[a.name])
			}
		}
	}
}
