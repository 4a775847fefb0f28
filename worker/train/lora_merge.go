package train

import (
	"fmt"

	"github.com/ark-sched/ark/kernels"
)

// Weights downloads the adapter's parameters to host memory.
func (a *Adapter) Weights() (*AdapterWeights, error) {
	p, err := kernels.Download(a.d, a.params)
	if err != nil {
		return nil, fmt.Errorf("download adapter: %w", err)
	}
	return &AdapterWeights{Cfg: a.Cfg, Model: a.Model, Base: a.Base, BaseSHA256: a.BaseSHA256, Params: p}, nil
}

// MergeInto folds w into m's weights, W += (Alpha/Rank)·B·A for every
// targeted layer, computed in float64 and rounded once: the merged model
// computes what the base with the adapter attached computes, with no
// adapter cost per token (for export; serving keeps adapters apart so one
// base serves many).
func (w *AdapterWeights) MergeInto(m *Model) error {
	if w.Model != m.Cfg {
		return fmt.Errorf("%w: adapter for model %+v, this model is %+v", ErrConfig, w.Model, m.Cfg)
	}
	host, err := kernels.Download(m.d, m.params)
	if err != nil {
		return fmt.Errorf("merge adapter: %w", err)
	}
	r, s := w.Cfg.Rank, float64(w.Cfg.Alpha)/float64(w.Cfg.Rank)
	shape := w.Cfg.loraShape(m.Cfg)
	off := 0
	for l := range m.Cfg.Layers {
		bs := m.Cfg.blockStart(l)
		C := m.Cfg.Width
		// Offsets of the adapted weights inside block l (see layout).
		wOff := [loraSlots]int{
			loraQKV:  bs + 2*C,
			loraO:    bs + 2*C + 3*C*C + 3*C,
			loraFC:   bs + 2*C + 3*C*C + 3*C + C*C + C + 2*C,
			loraProj: bs + 2*C + 3*C*C + 3*C + C*C + C + 2*C + 4*C*C + 4*C,
		}
		for t, io := range shape {
			in, out := io[0], io[1]
			if in == 0 {
				continue
			}
			A := w.Params[off : off+r*in]
			Bt := w.Params[off+r*in : off+r*in+r*out] // Bᵀ, Rank x out
			off += r * (in + out)
			W := host[wOff[t] : wOff[t]+out*in]
			for i := range out {
				for j := range in {
					var d float64
					for k := range r {
						d += float64(Bt[k*out+i]) * float64(A[k*in+j])
					}
					W[i*in+j] = float32(float64(W[i*in+j]) + s*d)
				}
			}
		}
	}
	if err := kernels.WriteFloat32(m.d, m.params, host); err != nil {
		return fmt.Errorf("merge adapter: %w", err)
	}
	return nil
}
