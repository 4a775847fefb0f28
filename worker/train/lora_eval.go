package train

import (
	"context"
	"fmt"

	"github.com/ark-sched/ark/kernels"
)

// EvalRow is one checkpoint's held-out loss: a whole model, or a LoRA
// adapter evaluated on its base (Base names the base then).
type EvalRow struct {
	Checkpoint string  `json:"checkpoint"`
	Step       int64   `json:"step"`
	Adapter    bool    `json:"adapter,omitempty"`
	Base       string  `json:"base,omitempty"`
	Loss       float64 `json:"loss"`
	Perplexity float64 `json:"perplexity"`
	Tokens     int     `json:"tokens"`
	// On a dataset of prompt/answer pairs (EvalQA): the fraction of
	// generated answers equal to the expected ones, their mean word
	// overlap (F1), and the number of pairs.
	ExactMatch *float64 `json:"exactMatch,omitempty"`
	Overlap    *float64 `json:"overlap,omitempty"`
	Samples    int      `json:"samples,omitempty"`
}

// Evaluator evaluates checkpoints one after another on one device. An
// adapter is evaluated on the base it was trained on: a base evaluated
// before it (matched by parameter checksum, so `--ckpt BASE,ADAPTER`
// loads the base once and reads nothing else), else the base URI the
// adapter records.
type Evaluator struct {
	d     kernels.Device
	keys  *CheckpointKeys
	bases map[string]*Model // by ParamsSHA256
}

// NewEvaluator returns an evaluator on d; keys open sealed checkpoints.
func NewEvaluator(d kernels.Device, keys *CheckpointKeys) *Evaluator {
	return &Evaluator{d: d, keys: keys, bases: map[string]*Model{}}
}

// Eval evaluates the checkpoint uri on ds's held-out split.
func (e *Evaluator) Eval(ctx context.Context, uri string, ds *Dataset, batch, windows int) (EvalRow, error) {
	return e.with(ctx, uri, func(m *Model, row *EvalRow) error {
		ev, err := m.Eval(ds, batch, windows)
		if err != nil {
			return err
		}
		row.Loss, row.Perplexity, row.Tokens = ev.Loss, ev.Perplexity, ev.Tokens
		return nil
	})
}

// with loads the checkpoint uri (a whole model, or an adapter on its
// base) and runs fn on it.
func (e *Evaluator) with(ctx context.Context, uri string, fn func(m *Model, row *EvalRow) error) (EvalRow, error) {
	c, err := OpenCheckpoint(ctx, uri, e.keys)
	if err != nil {
		return EvalRow{}, err
	}
	row := EvalRow{Checkpoint: uri, Step: c.Ref.Step}
	var m *Model
	if c.Manifest.Metadata[metaLoRA] == "" {
		if m, _, err = LoadModel(ctx, e.d, uri, e.keys); err != nil {
			return row, err
		}
		sum, err := m.ParamsSHA256()
		if err != nil {
			return row, err
		}
		e.bases[sum] = m
	} else {
		w, err := ReadAdapter(ctx, uri, e.keys)
		if err != nil {
			return row, err
		}
		if m = e.bases[w.BaseSHA256]; m == nil {
			if m, _, err = LoadModel(ctx, e.d, w.Base, e.keys); err != nil {
				return row, fmt.Errorf("the adapter's base %s: %w", w.Base, err)
			}
			sum, err := m.ParamsSHA256()
			if err != nil {
				return row, err
			}
			if err := w.CheckBase(m.Cfg, sum); err != nil {
				return row, err
			}
			e.bases[sum] = m
		}
		a, err := w.Upload(e.d)
		if err != nil {
			return row, err
		}
		defer a.Free()
		if err := m.SetAdapter(a); err != nil {
			return row, err
		}
		defer m.SetAdapter(nil)
		row.Adapter, row.Base = true, w.Base
	}
	return row, fn(m, &row)
}
