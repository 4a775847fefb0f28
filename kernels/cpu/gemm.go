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
	// edge, when set, is a kernel of fewer rows on the same B panels (4
	// for the AVX2 6x16): a block of rows that is not a whole number of
	// mr-row panels ends in one or two edge panels instead of one padded
	// with zero rows. A decode step's 32 rows are 4x6 + 2x4, where six
	// 6-row panels computed 36. See split.
	edge *microKernel
	// short, when set, runs blocks of fewer than mr rows (one padded
	// panel) instead of fn: the AVX2 fn prefetches the next B panel and
	// C's rows, short is the kernel as it was before those prefetches.
	short func(k int, a, b, c *float32, ldc int)
	// row, when set, runs blocks of one row (a decode step at concurrency
	// 1): a matrix-vector product, bound by reading B, where a panel
	// padded to mr rows makes the core compute mr-1 rows of zeros while
	// the weights stream in (11 of 12 with AVX-512). It adds a[0], a[lda],
	// ... (a column of the packed A panel) times a B panel into the nr
	// floats at c, each element's FMA chain the same as fn's, so a row's
	// result does not depend on the rows beside it.
	row func(k int, a *float32, lda int, b, c *float32)
	// rowHalf, when set, is row on B panels kept in bfloat16
	// (kernels.BF16Packer): each element widened to float32 in a register
	// and the same FMA chain, so a row's result is row's on the widened
	// panel. Without it a bfloat16 panel is widened into scratch first.
	rowHalf func(k int, a *float32, lda int, b *uint16, c *float32)
	// fnHalf, when set, is fn on bfloat16 B panels, widening in registers
	// (for every block of rows: short is not used, and the edge kernel
	// must have its own); without it a bfloat16 panel of more than one row
	// is widened into scratch for fn.
	fnHalf func(k int, a *float32, b *uint16, c *float32, ldc int)
	// halfMaxPanels, when above 0, is the most row panels a block may
	// have for fnHalf to run; a block of more widens each B panel into
	// scratch once and runs fn on it for all of them. Widening in
	// registers costs once per row panel, in scratch once per B panel: the
	// AVX2 kernel's four widening instructions a step compete with its
	// FMAs for the vector ports (at 32 rows, six panels, 0.84-0.92x of float32
	// against 0.94-0.97x widened once; at 8 rows, two panels, 1.00-1.09x
	// against 0.82-0.93x).
	halfMaxPanels int
	// halfInterleaved says rowHalf and fnHalf read each 32-wide row of a
	// bfloat16 panel in halfInterleave's order.
	halfInterleaved bool
}

// split cuts mb rows of A into big panels of mk.mr rows followed by small
// panels of mk.edge.mr, covering at least mb rows with the fewest rows
// computed (ties: fewer small panels). Without an edge kernel, and for
// fewer than mk.mr rows, it is one run of mr-row panels, the last padded:
// a block of one row (a decode step at concurrency 1) is a matrix-vector
// product, which wants a kernel of its own, not a smaller padding.
func (mk *microKernel) split(mb int) (big, small int) {
	big = (mb + mk.mr - 1) / mk.mr
	if mk.edge == nil || mb < mk.mr {
		return big, 0
	}
	best := big * mk.mr
	for f := 1; f < mk.mr; f++ {
		rest := mb - f*mk.edge.mr
		if rest < 0 {
			break
		}
		a := (rest + mk.mr - 1) / mk.mr
		if rows := a*mk.mr + f*mk.edge.mr; rows < best {
			best, big, small = rows, a, f
		}
	}
	return big, small
}

// panel is the kernel of the q-th panel of a split into big and small.
func (mk *microKernel) panel(q, big int) *microKernel {
	if q < big {
		return mk
	}
	return mk.edge
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

// gemmOp is one multiplication C = alpha*op(A)*op(B) + beta*C + bias with
// explicit leading dimensions (row strides), so attention can multiply the
// heads inside a packed qkv tensor without copying them out.
type gemmOp struct {
	a, b, c, bias  []float32
	lda, ldb, ldc  int
	m, n, k        int
	transA, transB bool
	alpha, beta    float32
}

// prepRows scales rows [lo, hi) of C by beta and adds the bias.
func (o *gemmOp) prepRows(lo, hi int) {
	for i := lo; i < hi; i++ {
		row := o.c[i*o.ldc : i*o.ldc+o.n]
		switch o.beta {
		case 0:
			if o.bias != nil { // one pass, not a clear and then an add
				copy(row, o.bias[:o.n])
				continue
			}
			clear(row)
		case 1:
		default:
			for j := range row {
				row[j] *= o.beta
			}
		}
		if o.bias != nil {
			for j, v := range o.bias[:o.n] {
				row[j] += v
			}
		}
	}
}

// packB packs panels [lo, hi) of nr columns of op(B), rows [pc, pc+kb),
// into bp (panel jp at jp*kb*nr), zero-padding the last panel.
func (o *gemmOp) packB(bp []float32, nr, pc, kb, lo, hi int) {
	for jp := lo; jp < hi; jp++ {
		j0 := jp * nr
		dst := bp[jp*kb*nr : (jp+1)*kb*nr]
		w := min(nr, o.n-j0)
		if !o.transB {
			for p := 0; p < kb; p++ {
				row := dst[p*nr : p*nr+nr]
				src := o.b[(pc+p)*o.ldb+j0:]
				copy(row, src[:w])
				clear(row[w:])
			}
			continue
		}
		if w < nr {
			clear(dst)
		}
		for j := 0; j < w; j++ {
			src := o.b[(j0+j)*o.ldb+pc : (j0+j)*o.ldb+pc+kb]
			for p, v := range src {
				dst[p*nr+j] = v
			}
		}
	}
}

// packA packs rows [i0, i0+mb) x columns [pc, pc+kb) of alpha*op(A) into
// panels as mk.split cuts them (a panel of mr rows from row r at r*kb,
// column by column), zero-padding the last.
func (o *gemmOp) packA(ap []float32, mk microKernel, i0, mb, pc, kb int) {
	big, small := mk.split(mb)
	r0 := 0
	for q := range big + small {
		mr := mk.panel(q, big).mr
		o.packPanelA(ap[r0*kb:(r0+mr)*kb], mr, i0+r0, min(mr, mb-r0), pc, kb)
		r0 += mr
	}
}

// packPanelA packs rows [i, i+rows) x columns [pc, pc+kb) of alpha*op(A)
// into dst as one panel of mr rows, zero-padding rows past rows.
func (o *gemmOp) packPanelA(dst []float32, mr, i, rows, pc, kb int) {
	if rows < mr {
		clear(dst)
	}
	for r := range rows {
		if !o.transA {
			src := o.a[(i+r)*o.lda+pc : (i+r)*o.lda+pc+kb]
			for p, v := range src {
				dst[p*mr+r] = o.alpha * v
			}
			continue
		}
		for p := range kb {
			dst[p*mr+r] = o.alpha * o.a[(pc+p)*o.lda+i+r]
		}
	}
}

// tile multiplies the packed A block (rows [i0, i0+mb)) by packed B
// panels covering columns [j0, j0+nb) into C.
func (o *gemmOp) tile(mk microKernel, ap, bp, tmp []float32, i0, mb, j0, nb, kb int) {
	nr := mk.nr
	big, small := mk.split(mb)
	for jr := 0; jr < nb; jr += nr {
		jw := min(nr, nb-jr)
		bpan := &bp[((j0+jr)/nr)*kb*nr]
		if mb == 1 && mk.row != nil {
			o.rowPanel(mk, ap, bpan, nil, tmp, i0, j0+jr, jw, kb, mk.panel(0, big).mr)
			continue
		}
		o.panelRows(mk, ap, bpan, nil, tmp, i0, mb, j0+jr, jw, kb, big, small)
	}
}

// tileHalf is tile on B panels kept in bfloat16 (bh), read from memory at
// half the bytes: through rowHalf for one row and fnHalf for more, which
// widen in registers; a kernel without them gets each panel widened into
// wide (kb x nr floats) first.
func (o *gemmOp) tileHalf(mk microKernel, ap []float32, bh []uint16, tmp, wide []float32, i0, mb, j0, nb, kb int) {
	nr := mk.nr
	big, small := mk.split(mb)
	for jr := 0; jr < nb; jr += nr {
		jw := min(nr, nb-jr)
		off := ((j0 + jr) / nr) * kb * nr
		if mb == 1 && mk.rowHalf != nil {
			o.rowPanel(mk, ap, nil, &bh[off], tmp, i0, j0+jr, jw, kb, mk.panel(0, big).mr)
			continue
		}
		if mk.fnHalf != nil && (mk.halfMaxPanels == 0 || big+small <= mk.halfMaxPanels) {
			o.panelRows(mk, ap, nil, &bh[off], tmp, i0, mb, j0+jr, jw, kb, big, small)
			continue
		}
		widenBF16(wide[:kb*nr], bh[off:off+kb*nr])
		if mb == 1 && mk.row != nil {
			o.rowPanel(mk, ap, &wide[0], nil, tmp, i0, j0+jr, jw, kb, mk.panel(0, big).mr)
			continue
		}
		o.panelRows(mk, ap, &wide[0], nil, tmp, i0, mb, j0+jr, jw, kb, big, small)
	}
}

// panelRows multiplies the packed A block (mb rows from i0, in big mr-row
// panels then small edge panels) by one B panel, float32 (bpan, fn) or
// bfloat16 (bhalf, fnHalf), into C's columns [j, j+jw).
func (o *gemmOp) panelRows(mk microKernel, ap []float32, bpan *float32, bhalf *uint16, tmp []float32, i0, mb, j, jw, kb, big, small int) {
	nr, ldc := mk.nr, o.ldc
	r0 := 0
	for q := range big + small {
		k := mk.panel(q, big)
		mr, fn := k.mr, k.fn
		if mb < mr && k.short != nil {
			fn = k.short
		}
		iw := min(mr, mb-r0)
		apan := &ap[r0*kb]
		run := func(c *float32, ldc int) {
			if bhalf != nil {
				k.fnHalf(kb, apan, bhalf, c, ldc)
			} else {
				fn(kb, apan, bpan, c, ldc)
			}
		}
		if iw == mr && jw == nr {
			run(&o.c[(i0+r0)*ldc+j], ldc)
			r0 += mr
			continue
		}
		clear(tmp[:mr*nr])
		run(&tmp[0], nr)
		for r := range iw {
			row := o.c[(i0+r0+r)*ldc+j : (i0+r0+r)*ldc+j+jw]
			for x := range row {
				row[x] += tmp[r*nr+x]
			}
		}
		r0 += mr
	}
}

// rowPanel is tile's one-row case: row i0 of C, columns [j, j+jw), from
// the first column of the A panel packed mr floats a step, by a B panel
// in float32 (bpan, mk.row) or bfloat16 (bhalf, mk.rowHalf).
func (o *gemmOp) rowPanel(mk microKernel, ap []float32, bpan *float32, bhalf *uint16, tmp []float32, i0, j, jw, kb, mr int) {
	c := o.c[i0*o.ldc+j : i0*o.ldc+j+jw]
	out := &c[0]
	if jw < mk.nr {
		clear(tmp[:mk.nr])
		out = &tmp[0]
	}
	if bhalf != nil {
		mk.rowHalf(kb, &ap[0], mr, bhalf, out)
	} else {
		mk.row(kb, &ap[0], mr, bpan, out)
	}
	if jw < mk.nr {
		for x := range c {
			c[x] += tmp[x]
		}
	}
}

// gemmScratch is one thread's packing space.
type gemmScratch struct {
	ap, bp, tmp []float32
	wide        []float32 // one bfloat16 B panel widened (tileHalf)
}

func (s *gemmScratch) grow(mk microKernel, n int) {
	if len(s.ap) < kcBlock*mcBlock {
		s.ap = make([]float32, kcBlock*mcBlock)
	}
	if nb := kcBlock * ((n + mk.nr - 1) / mk.nr) * mk.nr; len(s.bp) < nb {
		s.bp = make([]float32, nb)
	}
	if len(s.tmp) < 12*32 {
		s.tmp = make([]float32, 12*32)
	}
	if len(s.wide) < kcBlock*mk.nr {
		s.wide = make([]float32, kcBlock*mk.nr)
	}
}

// serial runs the whole multiplication on the calling goroutine with s's
// scratch (grown as needed): what attention uses inside its own parallel
// loop over heads.
func (o *gemmOp) serial(mk microKernel, s *gemmScratch) {
	s.grow(mk, o.n)
	if o.beta != 1 || o.bias != nil {
		o.prepRows(0, o.m)
	}
	if o.alpha == 0 {
		return
	}
	panels := (o.n + mk.nr - 1) / mk.nr
	for pc := 0; pc < o.k; pc += kcBlock {
		kb := min(kcBlock, o.k-pc)
		o.packB(s.bp, mk.nr, pc, kb, 0, panels)
		for i0 := 0; i0 < o.m; i0 += mcBlock {
			mb := min(mcBlock, o.m-i0)
			o.packA(s.ap, mk, i0, mb, pc, kb)
			o.tile(mk, s.ap, s.bp, s.tmp, i0, mb, 0, o.n, kb)
		}
	}
}

// gemmState is the Device's parallel matmul: the current call, its k block,
// and per-worker scratch (the packed B block is shared, in scratch[0].bp).
// The job types below are views of it with different run methods.
type gemmState struct {
	op      gemmOp
	k       microKernel
	pc, kb  int       // current k block
	bp      []float32 // its packed B: scratch[0].bp, or a PackB block
	bh      []uint16  // or a PackBBF16 block (bp nil)
	mt, nt  int       // tiles in M and N
	scratch []gemmScratch
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
	o := gemmOp{c: s[0], a: s[1], b: s[2], bias: s[3], m: p.M, n: p.N, k: p.K,
		transA: p.TransA, transB: p.TransB, alpha: p.Alpha, beta: p.Beta, lda: p.K, ldb: p.N, ldc: p.N}
	if p.TransA {
		o.lda = p.M
	}
	if p.TransB {
		o.ldb = p.K
	}
	d.matmul(&o, kern)
	return nil
}

// matmul runs one GEMM across the pool with micro-kernel mk.
func (d *Device) matmul(o *gemmOp, mk microKernel) { d.matmulWith(o, mk, nil, nil) }

// matmulWith is matmul with op(B) already packed for mk when packed is
// set (PackB: one slice per k block) or half is (PackBBF16: the same
// panels in bfloat16), else packed here per k block.
func (d *Device) matmulWith(o *gemmOp, mk microKernel, packed [][]float32, half [][]uint16) {
	g := &d.gemm
	g.op, g.k = *o, mk
	if len(g.scratch) < d.pool.size {
		g.scratch = make([]gemmScratch, d.pool.size)
	}
	for w := range g.scratch {
		g.scratch[w].grow(mk, 0)
	}
	g.scratch[0].grow(mk, o.n)
	if o.beta != 1 || o.bias != nil {
		d.parallel(o.m, max(1, 16384/o.n), (*gemmPrep)(g))
	}
	if o.alpha != 0 {
		g.mt = (o.m + mcBlock - 1) / mcBlock
		g.nt = (o.n + ncTile - 1) / ncTile
		panels := (o.n + mk.nr - 1) / mk.nr
		g.pc = 0
		for blk := 0; g.pc < o.k; blk++ {
			g.kb = min(kcBlock, o.k-g.pc)
			switch {
			case half != nil:
				g.bh = half[blk]
			case packed != nil:
				g.bp = packed[blk]
			default:
				d.parallel(panels, max(1, 4096/(g.kb*mk.nr)), (*gemmPackB)(g))
				g.bp = g.scratch[0].bp
			}
			d.parallel(g.mt*g.nt, 1, (*gemmTiles)(g))
			g.pc += kcBlock
		}
	}
	g.op, g.bp, g.bh = gemmOp{}, nil, nil
}

func (g *gemmPrep) run(_, lo, hi int) { g.op.prepRows(lo, hi) }

func (g *gemmPackB) run(_, lo, hi int) {
	g.op.packB(g.scratch[0].bp, g.k.nr, g.pc, g.kb, lo, hi)
}

func (g *gemmTiles) run(w, lo, hi int) {
	s := &g.scratch[w]
	o := &g.op
	lastI := -1
	for t := lo; t < hi; t++ {
		ti, tj := t/g.nt, t%g.nt
		i0, j0 := ti*mcBlock, tj*ncTile
		mb, nb := min(mcBlock, o.m-i0), min(ncTile, o.n-j0)
		if ti != lastI { // consecutive tiles of one row band share the packed A
			o.packA(s.ap, g.k, i0, mb, g.pc, g.kb)
			lastI = ti
		}
		if g.bh != nil {
			o.tileHalf(g.k, s.ap, g.bh, s.tmp, s.wide, i0, mb, j0, nb, g.kb)
		} else {
			o.tile(g.k, s.ap, g.bp, s.tmp, i0, mb, j0, nb, g.kb)
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
