package cpu

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/ark-sched/ark/kernels"
)

func BenchmarkMatMul(b *testing.B) {
	for _, n := range []int{256, 512, 1024} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%d/%dt", n, threads), func(b *testing.B) {
				d := New(threads)
				defer d.Close()
				x, y, z := mustAlloc(b, d, n*n), mustAlloc(b, d, n*n), mustAlloc(b, d, n*n)
				p := kernels.MatMulArgs{M: n, N: n, K: n, Alpha: 1}
				b.ResetTimer()
				for b.Loop() {
					if err := d.MatMul(z, x, y, nil, p); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(2*float64(n*n*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

func BenchmarkAttention(b *testing.B) {
	s := kernels.AttnShape{B: 4, T: 256, C: 384, Heads: 6}
	d := New(0)
	defer d.Close()
	out, probs := mustAlloc(b, d, s.B*s.T*s.C), mustAlloc(b, d, s.B*s.Heads*s.T*s.T)
	qkv := mustAlloc(b, d, s.B*s.T*3*s.C)
	for b.Loop() {
		if err := d.Attention(out, probs, qkv, s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLayerNorm(b *testing.B) {
	rows, cols := 1024, 768
	d := New(0)
	defer d.Close()
	x, out := mustAlloc(b, d, rows*cols), mustAlloc(b, d, rows*cols)
	m, r, w, bias := mustAlloc(b, d, rows), mustAlloc(b, d, rows), mustAlloc(b, d, cols), mustAlloc(b, d, cols)
	for b.Loop() {
		if err := d.LayerNorm(out, m, r, x, w, bias, rows, cols, 1e-5); err != nil {
			b.Fatal(err)
		}
	}
}

func mustAlloc(tb testing.TB, d *Device, n int) kernels.Buffer {
	buf, err := d.Alloc(kernels.Float32, n)
	if err != nil {
		tb.Fatal(err)
	}
	f, _ := d.Float32s(buf)
	for i := range f {
		f[i] = float32(i%17) * 0.01
	}
	return buf
}

// BenchmarkGatherLoRA is GatherLoRA on a decode step's shapes (32 rows,
// each on its own of 32 adapters of rank 8) and a prefill's (1024 rows, 32
// per adapter), for gpt-tiny's widest target (64 -> 256) and gpt-small's.
func BenchmarkGatherLoRA(b *testing.B) {
	for _, c := range []struct {
		name               string
		rows, per, in, out int
	}{
		{"decode/64x256", 32, 1, 64, 256},
		{"prefill/64x256", 1024, 32, 64, 256},
		{"decode/128x512", 32, 1, 128, 512},
	} {
		b.Run(c.name, func(b *testing.B) {
			const slots, rank = 32, 8
			d := New(1)
			defer d.Close()
			y, x := mustAlloc(b, d, c.rows*c.out), mustAlloc(b, d, c.rows*c.in)
			a, bt := mustAlloc(b, d, slots*rank*c.in), mustAlloc(b, d, slots*rank*c.out)
			sc, rs := mustAlloc(b, d, slots), mustAllocInt32(b, d, c.rows)
			ri, _ := d.Int32s(rs)
			for i := range ri {
				ri[i] = int32(i / c.per % slots)
			}
			p := kernels.LoRAArgs{Rows: c.rows, In: c.in, Out: c.out, Rank: rank, Slots: slots}
			for b.Loop() {
				if err := d.GatherLoRA(y, x, a, bt, rs, sc, p); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(2*float64(c.rows*rank*(c.in+c.out))*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkCachedAttention is one decode row's attention over its cache
// at position 48 (all heads), gpt-tiny's shape (4 heads of 16) and
// gpt-small's (4 of 32), with the vector paths and with the portable Go.
func BenchmarkCachedAttention(b *testing.B) {
	for _, c := range []struct {
		name         string
		heads, hs, t int
	}{{"gpt-tiny", 4, 16, 64}, {"gpt-small", 4, 32, 128}} {
		for _, vec := range []bool{true, false} {
			b.Run(fmt.Sprintf("%s/vector=%v", c.name, vec), func(b *testing.B) {
				saved, savedExp := useKVAttnAVX2, useGELUAVX512
				defer func() { useKVAttnAVX2, useGELUAVX512 = saved, savedExp }()
				useKVAttnAVX2, useGELUAVX512 = vec && saved, vec && savedExp
				d := New(1)
				defer d.Close()
				w, n := c.heads*c.hs, c.heads*c.t*c.hs
				out, q, k, v := mustAlloc(b, d, w), mustAlloc(b, d, w), mustAlloc(b, d, n), mustAlloc(b, d, n)
				p := kernels.KVAttnArgs{Heads: c.heads, HeadSize: c.hs, Context: c.t, Len: 48}
				for b.Loop() {
					if err := d.CachedAttention(out, q, k, v, p); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func mustAllocInt32(tb testing.TB, d *Device, n int) kernels.Buffer {
	buf, err := d.Alloc(kernels.Int32, n)
	if err != nil {
		tb.Fatal(err)
	}
	return buf
}

// BenchmarkMatMulPackedDecode is MatMulPacked on the projections of a
// decode step of GPT-2 small's shape (width 768: qkv 768->2304, out
// 768->768, fc 768->3072, proj 3072->768, transposed weights packed once)
// at 1, 8 and 32 rows (concurrency 1, 8 and 32) and a prefill's 512, one
// thread, with the weights packed in float32 (f32) and in bfloat16 (bf16,
// PackBBF16). Besides the wall rate it reports GFLOP/s of the thread's own
// CPU time (cpu-GFLOP/s), which a shared machine's load moves far less.
func BenchmarkMatMulPackedDecode(b *testing.B) {
	const C = 768
	for _, m := range []int{1, 8, 32, 512} {
		for _, s := range []struct {
			name string
			n, k int
		}{{"qkv", 3 * C, C}, {"o", C, C}, {"fc", 4 * C, C}, {"proj", C, 4 * C}} {
			for _, half := range []bool{false, true} {
				b.Run(fmt.Sprintf("m%d/%s/%s", m, s.name, map[bool]string{false: "f32", true: "bf16"}[half]), func(b *testing.B) {
					benchPackedDecode(b, m, s.n, s.k, half)
				})
			}
		}
	}
}

func benchPackedDecode(b *testing.B, m, n, k int, half bool) {
	d := New(1)
	defer d.Close()
	x, w, y := mustAlloc(b, d, m*k), mustAlloc(b, d, n*k), mustAlloc(b, d, m*n)
	p := kernels.MatMulArgs{M: m, N: n, K: k, TransB: true, Alpha: 1}
	pack := d.PackB
	if half {
		pack = d.PackBBF16
	}
	pw, err := pack(w, p)
	if err != nil {
		b.Fatal(err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	for b.Loop() {
		if err := d.MatMulPacked(y, x, pw, nil, p); err != nil {
			b.Fatal(err)
		}
	}
	flop := 2 * float64(m*n*k) * float64(b.N)
	b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := threadCPU() - cpu0; cpu > 0 {
		b.ReportMetric(flop/cpu.Seconds()/1e9, "cpu-GFLOP/s")
	}
}

// BenchmarkCachedAttentionDecode is a decode step's cached attention at
// GPT-2 small's shape (12 heads of 64, context 256) for 32 rows at
// position 64, each over its own cache (50 MB in all, past the L3, as a
// serving step's are): what a row costs when its keys and values come
// from memory. One op is one row.
func BenchmarkCachedAttentionDecode(b *testing.B) {
	const heads, hs, ctx, rows, pos = 12, 64, 256, 32, 64
	d := New(1)
	defer d.Close()
	w, n := heads*hs, heads*ctx*hs
	out, q := mustAlloc(b, d, w), mustAlloc(b, d, w)
	ks, vs := make([]kernels.Buffer, rows), make([]kernels.Buffer, rows)
	for i := range rows {
		ks[i], vs[i] = mustAlloc(b, d, n), mustAlloc(b, d, n)
	}
	p := kernels.KVAttnArgs{Heads: heads, HeadSize: hs, Context: ctx, Len: pos}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0, i := threadCPU(), 0
	for b.Loop() {
		if err := d.CachedAttention(out, q, ks[i], vs[i], p); err != nil {
			b.Fatal(err)
		}
		i = (i + 1) % rows
	}
	if cpu := threadCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(2*heads*pos*hs*4)*float64(b.N)/cpu.Seconds()/1e9, "cpu-GB/s")
	}
}
