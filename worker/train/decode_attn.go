package train

import (
	"math"

	"github.com/ark-sched/ark/kernels"
)

// hostAttention is a decode step's attention for a device whose memory is
// the host's (the CPU): it appends each row's key and value to its cache,
// then attends each (row, head) query over that row's cache, in place. Through the Device it is two tiny MatMuls per
// (row, head) (each packing its slice of the cache) and a CrossEntropy
// over every padded score column: at batch 32 that was half of a step, a
// cost per row that batching cannot share. The math is Step's device path,
// with the softmax in float64.
func (d *Decoder) hostAttention(ha kernels.HostAccess, rows []*Seq, l int, qkvBuf, attBuf kernels.Buffer) error {
	c := d.m.Cfg
	T, C, H := c.Context, c.Width, c.Heads
	hs := C / H
	qkv, err := ha.Float32s(qkvBuf)
	if err != nil {
		return err
	}
	att, err := ha.Float32s(attBuf)
	if err != nil {
		return err
	}
	scale := 1 / math.Sqrt(float64(hs))
	d.scores = growFloats(d.scores, T)
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
		n := pos + 1
		for h := range H {
			q := qkv[i*3*C+h*hs : i*3*C+(h+1)*hs]
			keys, vals := kc[h*T*hs:(h*T+n)*hs], vc[h*T*hs:(h*T+n)*hs]
			sc := d.scores[:n]
			top := math.Inf(-1)
			for t := range n {
				var dot float32
				for j, kv := range keys[t*hs : (t+1)*hs] {
					dot += q[j] * kv
				}
				sc[t] = float32(float64(dot) * scale)
				top = max(top, float64(sc[t]))
			}
			var sum float64
			for t, v := range sc {
				e := math.Exp(float64(v) - top)
				sc[t] = float32(e)
				sum += e
			}
			out := att[i*C+h*hs : i*C+(h+1)*hs]
			clear(out)
			inv := float32(1 / sum)
			for t, p := range sc {
				w := p * inv
				for j, v := range vals[t*hs : (t+1)*hs] {
					out[j] += w * v
				}
			}
		}
	}
	return nil
}
