package train

import (
	"fmt"

	"github.com/ark-sched/ark/kernels"
)

// decodeLoRA are a Decoder's adapter slots: the compute-memory tier of a
// server that serves one base with many LoRA adapters. Per layer and
// targeted layer, the factors of every slot are stacked (A: Slots x Rank x
// in, Bᵀ: Slots x Rank x out), zero where a slot is empty, where its
// adapter does not adapt that layer, and past its own rank: so one
// gathered kernel call per layer serves a batch whose rows use different
// adapters, or none (slot -1).
type decodeLoRA struct {
	slots, rank int
	a, bt       [][loraSlots]kernels.Buffer // per layer
	scales      kernels.Buffer              // Slots: each slot's alpha/rank
	hostScales  []float32
	loaded      []bool
	// ranks are, per targeted layer, each slot's own rank there (0 where
	// its adapter does not adapt it): the gathered kernel skips the zero
	// rows past them (kernels.LoRAArgs.Ranks).
	ranks [loraSlots][]int32

	rowSlots kernels.Buffer // per call: each row's slot (grown)
	hostRows []int32
	u        kernels.Buffer // MatMul path's scratch, rows x Rank (grown)
	runs     []int          // MatMul path's segments
}

// SetAdapterSlots gives the decoder n adapter slots of rank up to maxRank,
// all empty, replacing any it had; 0 removes them. No sequence may hold a
// slot across the call.
func (d *Decoder) SetAdapterSlots(n, maxRank int) error {
	if d.lora != nil {
		d.freeLoRA()
	}
	if n == 0 {
		return nil
	}
	c := d.m.Cfg
	if n < 0 || maxRank < 1 || maxRank > c.Width {
		return fmt.Errorf("%w: %d adapter slots of rank up to %d (width %d)", ErrConfig, n, maxRank, c.Width)
	}
	dl := &decodeLoRA{slots: n, rank: maxRank, a: make([][loraSlots]kernels.Buffer, c.Layers), hostScales: make([]float32, n), loaded: make([]bool, n)}
	for t := range dl.ranks {
		dl.ranks[t] = make([]int32, n)
	}
	d.lora = dl
	shape := LoRAConfig{Targets: []string{LoRAAttn, LoRAMLP}}.loraShape(c)
	dl.bt = make([][loraSlots]kernels.Buffer, c.Layers)
	var err error
	alloc := func(dt kernels.DType, k int) kernels.Buffer {
		if err != nil {
			return nil
		}
		var b kernels.Buffer
		b, err = d.m.d.Alloc(dt, k)
		return b
	}
	for l := range c.Layers {
		for t, io := range shape {
			dl.a[l][t], dl.bt[l][t] = alloc(kernels.Float32, n*maxRank*io[0]), alloc(kernels.Float32, n*maxRank*io[1])
		}
	}
	dl.scales = alloc(kernels.Float32, n)
	if err != nil {
		d.freeLoRA()
		return fmt.Errorf("allocate %d adapter slots: %w", n, err)
	}
	return nil
}

// AdapterSlots is the number of adapter slots.
func (d *Decoder) AdapterSlots() int {
	if d.lora == nil {
		return 0
	}
	return d.lora.slots
}

func (d *Decoder) freeLoRA() {
	dl, dev := d.lora, d.m.d
	for l := range dl.a {
		for t := range loraSlots {
			for _, b := range []kernels.Buffer{dl.a[l][t], dl.bt[l][t]} {
				if b != nil {
					_ = dev.Free(b)
				}
			}
		}
	}
	for _, b := range []kernels.Buffer{dl.scales, dl.rowSlots, dl.u} {
		if b != nil {
			_ = dev.Free(b)
		}
	}
	d.lora = nil
}

// LoadSlot copies an adapter into slot (an upload of a few hundred KiB:
// quick next to a decode step). The adapter must be of this model and of
// rank at most the slots' rank; sequences in the slot see it from their
// next step.
func (d *Decoder) LoadSlot(slot int, w *AdapterWeights) error {
	dl := d.lora
	switch {
	case dl == nil || slot < 0 || slot >= dl.slots:
		return fmt.Errorf("%w: adapter slot %d of %d", ErrConfig, slot, d.AdapterSlots())
	case w.Model != d.m.Cfg:
		return fmt.Errorf("%w: adapter for model %+v, the base is %+v", ErrConfig, w.Model, d.m.Cfg)
	case w.Cfg.Rank > dl.rank:
		return fmt.Errorf("%w: adapter rank %d exceeds the slots' rank %d", ErrConfig, w.Cfg.Rank, dl.rank)
	case len(w.Params) != w.Cfg.NumParams(w.Model):
		return fmt.Errorf("%w: adapter has %d parameters, want %d", ErrConfig, len(w.Params), w.Cfg.NumParams(w.Model))
	}
	dev, R, r := d.m.d, dl.rank, w.Cfg.Rank
	full := LoRAConfig{Targets: []string{LoRAAttn, LoRAMLP}}.loraShape(d.m.Cfg)
	own := w.Cfg.loraShape(d.m.Cfg)
	k := calls{d: dev}
	off := 0
	for l := range d.m.Cfg.Layers {
		for t, io := range full {
			in, out := io[0], io[1]
			aSlot, btSlot := k.sl(dl.a[l][t], slot*R*in, R*in), k.sl(dl.bt[l][t], slot*R*out, R*out)
			k.do(dev.Fill(aSlot, 0))
			k.do(dev.Fill(btSlot, 0))
			if own[t][0] == 0 {
				continue // not adapted: stays zero
			}
			k.do(kernels.WriteFloat32(dev, k.sl(aSlot, 0, r*in), w.Params[off:off+r*in]))
			off += r * in
			k.do(kernels.WriteFloat32(dev, k.sl(btSlot, 0, r*out), w.Params[off:off+r*out]))
			off += r * out
		}
	}
	dl.hostScales[slot] = w.Cfg.Scale()
	k.do(kernels.WriteFloat32(dev, dl.scales, dl.hostScales))
	if k.err != nil {
		return fmt.Errorf("load adapter slot %d: %w", slot, k.err)
	}
	for t := range full {
		dl.ranks[t][slot] = 0
		if own[t][0] != 0 {
			dl.ranks[t][slot] = int32(r)
		}
	}
	dl.loaded[slot] = true
	return nil
}

// ClearSlot empties slot: rows still in it decode as the base.
func (d *Decoder) ClearSlot(slot int) error {
	dl := d.lora
	if dl == nil || slot < 0 || slot >= dl.slots {
		return fmt.Errorf("%w: adapter slot %d of %d", ErrConfig, slot, d.AdapterSlots())
	}
	dl.hostScales[slot] = 0
	dl.loaded[slot] = false
	for t := range dl.ranks {
		dl.ranks[t][slot] = 0
	}
	if err := kernels.WriteFloat32(d.m.d, dl.scales, dl.hostScales); err != nil {
		return fmt.Errorf("clear adapter slot %d: %w", slot, err)
	}
	return nil
}

// loraRows prepares a call's per-row slots (rowSlot(i) for rows rows):
// it reports whether any row uses an adapter, and uploads the slots for
// the gathered kernel.
func (d *Decoder) loraRows(rows int, rowSlot func(i int) int) (bool, error) {
	dl := d.lora
	if dl == nil {
		return false, nil
	}
	dl.hostRows = dl.hostRows[:0]
	used := false
	for i := range rows {
		s := rowSlot(i)
		if s >= dl.slots {
			return false, fmt.Errorf("%w: row %d in adapter slot %d of %d", ErrDecode, i, s, dl.slots)
		}
		if s >= 0 && !dl.loaded[s] {
			s = -1 // cleared under it: the base
		}
		used = used || s >= 0
		dl.hostRows = append(dl.hostRows, int32(s))
	}
	if !used {
		return false, nil
	}
	dev := d.m.d
	if dl.rowSlots == nil || dl.rowSlots.Len() < rows {
		if dl.rowSlots != nil {
			_ = dev.Free(dl.rowSlots)
			dl.rowSlots = nil
		}
		b, err := dev.Alloc(kernels.Int32, max(rows, 64))
		if err != nil {
			return false, err
		}
		dl.rowSlots = b
	}
	if _, ok := dev.(kernels.GatheredLoRA); ok {
		k := calls{d: dev}
		k.do(kernels.WriteInt32(dev, k.sl(dl.rowSlots, 0, rows), dl.hostRows))
		return true, k.err
	}
	return true, nil
}

// applyLoRA adds each row's adapter update of targeted layer t of block l
// into y (rows x out) from x (rows x in), after loraRows: one call of the
// device's gathered kernel (per-row products: measured a little faster
// than a MatMul pair per prompt for gpt-tiny prefills too). Without that
// kernel, a MatMul pair per segment (Punica's SGMV shape): per sequence
// given segs (a prefill: each sequence's first row, ascending, then rows),
// else per run of consecutive rows that share an adapter. Either way a
// row is computed the same way whatever else is in its batch, so batched
// decoding equals decoding alone.
func (d *Decoder) applyLoRA(k *calls, l, t int, y, x kernels.Buffer, rows int, segs []int) {
	dl, dev := d.lora, d.m.d
	if k.err != nil {
		return
	}
	C := d.m.Cfg.Width
	in, out := C, C
	switch t {
	case loraQKV:
		out = 3 * C
	case loraFC:
		out = 4 * C
	case loraProj:
		in = 4 * C
	}
	R := dl.rank
	g, gathered := dev.(kernels.GatheredLoRA)
	if gathered {
		k.do(g.GatherLoRA(y, x, dl.a[l][t], dl.bt[l][t], k.sl(dl.rowSlots, 0, rows), dl.scales,
			kernels.LoRAArgs{Rows: rows, In: in, Out: out, Rank: R, Slots: dl.slots, Ranks: dl.ranks[t]}))
		return
	}
	if segs == nil { // runs of rows in one slot
		dl.runs = dl.runs[:0]
		for i := range rows {
			if i == 0 || dl.hostRows[i] != dl.hostRows[i-1] {
				dl.runs = append(dl.runs, i)
			}
		}
		segs = append(dl.runs, rows)
	}
	longest := 0
	for i := range len(segs) - 1 {
		longest = max(longest, segs[i+1]-segs[i])
	}
	if dl.u == nil || dl.u.Len() < longest*R {
		if dl.u != nil {
			_ = dev.Free(dl.u)
		}
		var err error
		if dl.u, err = dev.Alloc(kernels.Float32, max(longest, 64)*R); err != nil {
			k.do(err)
			return
		}
	}
	for q := range len(segs) - 1 {
		i, j := segs[q], segs[q+1]
		s := dl.hostRows[i]
		if s < 0 || j == i {
			continue
		}
		// uᵀ = A·xᵀ (Rank x n), then y += s·(uᵀ)ᵀ·Bᵀ: the rank is an M
		// or a K, never a thin N (see loraLinear).
		n := j - i
		ut := k.sl(dl.u, 0, R*n)
		k.mm(ut, k.sl(dl.a[l][t], int(s)*R*in, R*in), k.sl(x, i*in, n*in), nil,
			kernels.MatMulArgs{M: R, N: n, K: in, TransB: true, Alpha: 1})
		k.mm(k.sl(y, i*out, n*out), ut, k.sl(dl.bt[l][t], int(s)*R*out, R*out), nil,
			kernels.MatMulArgs{M: n, N: out, K: R, TransA: true, Alpha: dl.hostScales[s], Beta: 1})
	}
}
