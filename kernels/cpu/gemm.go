package cpu

import (
	"unsafe"

	"github.com/ark-sched/ark/kernels"
)

// Cache blocking. kc x nr panels of B (16 KiB at nr 16) stay in L1 while a
// micro-kernel sweeps them; an mc x kc block of A (96 KiB) stays in L2 per
// worker; one kc x N block of B is packed per kc step and shared by all
// workers. Tiles of mc x ncTile of C are the unit of parallel work.
const (
	kcBlock = 256
	mcBlock = 96  // a multiple of every kernel's mr (4, 6, 12)
	ncTile  = 192 // a multiple of every kernel's nr (8, 16, 32)
)

// microKernel adds the product of a packed mr x k panel of A (column by
// column: a[p*mr+r]) and a packed k x nr panel of B (row by row:
// b[p*nr+j]) into the mr x nr block at c with row stride ldc elements.
type microKernel struct {
	name   string
	mr, nr int
	fn     func(k int, a, b, c *float32, ldc int)
}

// kern is the micro-kernel in use, chosen at init for this CPU.
var kern = genericKernel

var genericKernel = microKernel{name: "go", mr: 4, nr: 8, fn: kernGo4x8}

// kernGo4x8 is the portable micro-kernel.
func kernGo4x8(k int, a, b, c *float32, ldc int) {
	as := unsafe.Slice(a, 4*k)
	bs := unsafe.Slice(b, 8*k)
	var c0, c1, c2, c3 [8]float32
	for p := 0; p < k; p++ {
		bp := (*[8]float32)(bs[8*p : 8*p+8])
		ap := (*[4]float32)(as[4*p : 4*p+4])
		for j := 0; j < 8; j++ {
			bj := bp[j]
			c0[j] += ap[0] * bj
			c1[j] += ap[1] * bj
			c2[j] += ap[2] * bj
			c3[j] += ap[3] * bj
		}
	}
	cs := unsafe.Slice(c, 3*ldc+8)
	for j := 0; j < 8; j++ {
		cs[j] += c0[j]
		cs[ldc+j] += c1[j]
		cs[2*ldc+j] += c2[j]
		cs[3*ldc+j] += c3[j]
	}
}

// gemmState is the Device's matmul scratch and the current call's operands;
// the job types below are views of it with different run methods.
type gemmState struct {
	a, b, c, bias []float32
	p             kernels.MatMulArgs
	k             microKernel
	pc, kb        int // current k block
	mt, nt        int // tiles in M and N
	bp            []float32
	ap, tmp       [][]float32 // per worker
}

type (
	gemmPrep  gemmState // scale C by beta, add bias; items are rows
	gemmPackB gemmState // pack B panels for block pc; items are panels
	gemmTiles gemmState // multiply; items are tiles
)

// MatMul computes C = alpha*op(A)*op(B) + beta*C + bias.
func (d *Device) MatMul(c, a, b, bias kernels.Buffer, p kernels.MatMulArgs) error {
	if err := kernels.CheckMatMul(c, a, b, bias, p); err != nil {
		return err
	}
	s, err := d.f32("matmul", c, a, b, bias)
	if err != nil {
		return err
	}
	d.matmul(s[0], s[1], s[2], s[3], p, kern)
	return nil
}

// matmul runs one GEMM with micro-kernel mk (tests force the portable one).
func (d *Device) matmul(c, a, b, bias []float32, p kernels.MatMulArgs, mk microKernel) {
	g := &d.gemm
	g.a, g.b, g.c, g.bias, g.p, g.k = a, b, c, bias, p, mk
	g.grow(d.pool.size)
	if p.Beta != 1 || bias != nil {
		d.parallel(p.M, max(1, 16384/p.N), (*gemmPrep)(g))
	}
	if p.Alpha != 0 {
		g.mt = (p.M + mcBlock - 1) / mcBlock
		g.nt = (p.N + ncTile - 1) / ncTile
		panels := (p.N + mk.nr - 1) / mk.nr
		for g.pc = 0; g.pc < p.K; g.pc += kcBlock {
			g.kb = min(kcBlock, p.K-g.pc)
			d.parallel(panels, max(1, 4096/(g.kb*mk.nr)), (*gemmPackB)(g))
			d.parallel(g.mt*g.nt, 1, (*gemmTiles)(g))
		}
	}
	g.a, g.b, g.c, g.bias = nil, nil, nil, nil
}

// grow sizes the scratch for the current call; it allocates only when a
// call is larger than every one before it.
func (g *gemmState) grow(workers int) {
	nr := g.k.nr
	nb := kcBlock * ((g.p.N + nr - 1) / nr) * nr
	if len(g.bp) < nb {
		g.bp = make([]float32, nb)
	}
	if len(g.ap) < workers {
		g.ap = make([][]float32, workers)
		g.tmp = make([][]float32, workers)
	}
	for w := 0; w < workers; w++ {
		if len(g.ap[w]) < kcBlock*mcBlock {
			g.ap[w] = make([]float32, kcBlock*mcBlock)
		}
		if len(g.tmp[w]) < 12*32 {
			g.tmp[w] = make([]float32, 12*32)
		}
	}
}

func (g *gemmPrep) run(_, lo, hi int) {
	n, beta := g.p.N, g.p.Beta
	for i := lo; i < hi; i++ {
		row := g.c[i*n : i*n+n]
		switch beta {
		case 0:
			clear(row)
		case 1:
		default:
			for j := range row {
				row[j] *= beta
			}
		}
		if g.bias != nil {
			for j, v := range g.bias[:n] {
				row[j] += v
			}
		}
	}
}

func (g *gemmPackB) run(_, lo, hi int) {
	nr, kb, pc, n, k := g.k.nr, g.kb, g.pc, g.p.N, g.p.K
	for jp := lo; jp < hi; jp++ {
		j0 := jp * nr
		dst := g.bp[jp*kb*nr : (jp+1)*kb*nr]
		w := min(nr, n-j0)
		if !g.p.TransB {
			for p := 0; p < kb; p++ {
				row := dst[p*nr : p*nr+nr]
				copy(row, g.b[(pc+p)*n+j0:(pc+p)*n+j0+w])
				clear(row[w:])
			}
			continue
		}
		if w < nr {
			clear(dst)
		}
		for j := 0; j < w; j++ {
			src := g.b[(j0+j)*k+pc : (j0+j)*k+pc+kb]
			for p, v := range src {
				dst[p*nr+j] = v
			}
		}
	}
}

func (g *gemmTiles) run(w, lo, hi int) {
	mr, nr, kb := g.k.mr, g.k.nr, g.kb
	m, n := g.p.M, g.p.N
	ap, tmp := g.ap[w], g.tmp[w]
	lastI := -1
	for t := lo; t < hi; t++ {
		ti, tj := t/g.nt, t%g.nt
		i0, j0 := ti*mcBlock, tj*ncTile
		mb, nb := min(mcBlock, m-i0), min(ncTile, n-j0)
		rp := (mb + mr - 1) / mr
		if ti != lastI { // tiles of one row band share the packed A
			g.packA(ap, i0, mb, rp)
			lastI = ti
		}
		for jr := 0; jr < nb; jr += nr {
			jw := min(nr, nb-jr)
			bpan := &g.bp[((j0+jr)/nr)*kb*nr]
			for ir := 0; ir < mb; ir += mr {
				iw := min(mr, mb-ir)
				apan := &ap[(ir/mr)*kb*mr]
				if iw == mr && jw == nr {
					g.k.fn(kb, apan, bpan, &g.c[(i0+ir)*n+j0+jr], n)
					continue
				}
				clear(tmp[:mr*nr])
				g.k.fn(kb, apan, bpan, &tmp[0], nr)
				for r := 0; r < iw; r++ {
					row := g.c[(i0+ir+r)*n+j0+jr : (i0+ir+r)*n+j0+jr+jw]
					for j := range row {
						row[j] += tmp[r*nr+j]
					}
				}
			}
		}
	}
}

// packA packs rows [i0, i0+mb) x columns [pc, pc+kb) of alpha*op(A) into
// rp panels of mr rows, zero-padding the last.
func (g *gemmTiles) packA(ap []float32, i0, mb, rp int) {
	mr, kb, pc, m, k, alpha := g.k.mr, g.kb, g.pc, g.p.M, g.p.K, g.p.Alpha
	for q := 0; q < rp; q++ {
		dst := ap[q*kb*mr : (q+1)*kb*mr]
		rows := min(mr, mb-q*mr)
		if rows < mr {
			clear(dst)
		}
		for r := 0; r < rows; r++ {
			i := i0 + q*mr + r
			if !g.p.TransA {
				src := g.a[i*k+pc : i*k+pc+kb]
				for p, v := range src {
					dst[p*mr+r] = alpha * v
				}
				continue
			}
			for p := 0; p < kb; p++ {
				dst[p*mr+r] = alpha * g.a[(pc+p)*m+i]
			}
		}
	}
}

// ColSum adds the column sums of in into out.
func (d *Device) ColSum(out, in kernels.Buffer, rows, cols int) error {
	if err := kernels.CheckColSum(out, in, rows, cols); err != nil {
		return err
	}
	s, err := d.f32("colsum", out, in)
	if err != nil {
		return err
	}
	j := &d.rows
	j.set(opColSum, rows, cols)
	j.out, j.in = s[0], s[1]
	d.parallel(cols, 256, j) // parallel over columns: no races on out
	return nil
}
