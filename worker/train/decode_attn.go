package train

import (
	"github.com/ark-sched/ark/kernels"
)

// hostAttention is a decode step's attention for a device whose memory is
// the host's and that has a fused attention over a cache (the CPU): it
// appends each row's key and value to its cache, then has the device
// attend each row's query over that row's cache (kernels.CachedAttention,
// one call per row with every head). Through the Device's other ops it is
// two tiny MatMuls per (row, head) (each packing its slice of the cache)
// and a CrossEntropy over every padded score column: at batch 32 that was
// half of a step, a cost per row that batching cannot share. The per-row
// views of qkv and att are the batch's own (stepBufs), so a step
// allocates nothing here.
func (d *Decoder) hostAttention(ha kernels.HostAccess, ca kernels.CachedAttention, rows []*Seq, l int, b *stepBufs) error {
	c := d.m.Cfg
	T, C, H := c.Context, c.Width, c.Heads
	hs := C / H
	qkv, err := ha.Float32s(b.qkv)
	if err != nil {
		return err
	}
	for i, s := range rows {
		kc, err := ha.Float32s(s.k[l])
		if err != nil {
			return err
		}
		vc, err := ha.Float32s(s.v[l])
		if err != nil {
			return err
		}
		pos := s.Len()
		for h := range H { // append this token's k and v to the row's cache
			at := (h*T + pos) * hs
			copy(kc[at:at+hs], qkv[i*3*C+C+h*hs:])
			copy(vc[at:at+hs], qkv[i*3*C+2*C+h*hs:])
		}
		p := kernels.KVAttnArgs{Heads: H, HeadSize: hs, Context: T, Len: pos + 1}
		if err := ca.CachedAttention(b.attRows[i], b.qRows[i], s.k[l], s.v[l], p); err != nil {
			return err
		}
	}
	return nil
}
