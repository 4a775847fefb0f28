package hfimport

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/nlpodyssey/safetensors"

	"github.com/ark-sched/ark/internal/bf16"
	"github.com/ark-sched/ark/worker/train"
)

// tensors is a parsed model.safetensors, names without the optional
// "transformer." prefix (GPT2LMHeadModel writes it; GPT2Model and the
// hub's gpt2 files do not).
type tensors struct {
	st    safetensors.SafeTensors
	names map[string]string // short name -> name in the file
}

// openTensors parses a safetensors file held in memory. The container
// library checks the header: offsets contiguous, sizes matching dtype x
// shape, the data exactly filling the file.
func openTensors(data []byte) (*tensors, error) {
	st, err := safetensors.Deserialize(data)
	if err != nil {
		return nil, fmt.Errorf("model.safetensors: %w", err)
	}
	t := &tensors{st: st, names: map[string]string{}}
	for _, name := range st.Names() {
		short := strings.TrimPrefix(name, "transformer.")
		if prev, dup := t.names[short]; dup {
			return nil, fmt.Errorf("%w: model.safetensors has both %q and %q", ErrUnsupported, prev, name)
		}
		t.names[short] = name
	}
	return t, nil
}

// get returns a tensor as float32, checking its shape; used marks it read.
func (t *tensors) get(short string, shape []uint64, used map[string]bool) ([]float32, error) {
	name, ok := t.names[short]
	if !ok {
		return nil, fmt.Errorf("%w: model.safetensors has no tensor %q (want shape %v)", ErrUnsupported, short, shape)
	}
	used[short] = true
	v, _ := t.st.Tensor(name)
	if !slices.Equal(v.Shape(), shape) {
		return nil, fmt.Errorf("%w: tensor %q has shape %v, want %v", ErrUnsupported, name, v.Shape(), shape)
	}
	out, err := toFloat32(v.DType(), v.Data())
	if err != nil {
		return nil, fmt.Errorf("%w: tensor %q: %w", ErrUnsupported, name, err)
	}
	return out, nil
}

// toFloat32 converts little-endian data of a floating dtype.
func toFloat32(dt safetensors.DType, b []byte) ([]float32, error) {
	switch dt {
	case safetensors.F32:
		out := make([]float32, len(b)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return out, nil
	case safetensors.F16:
		out := make([]float32, len(b)/2)
		for i := range out {
			out[i] = halfToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
		return out, nil
	case safetensors.BF16:
		out := make([]float32, len(b)/2)
		for i := range out {
			out[i] = bf16.ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
		return out, nil
	case safetensors.F64:
		out := make([]float32, len(b)/8)
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
		return out, nil
	}
	return nil, fmt.Errorf("dtype %s: want F32, F16, BF16 or F64", dt)
}

// halfToFloat32 converts IEEE 754 binary16 exactly (every half is a float32).
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf, NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: frac x 2^-24
		v := float32(frac) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}

// transpose returns the cols x rows transpose of a rows x cols matrix:
// GPT-2's Conv1D [in, out] into Ark's linear [out, in].
func transpose(m []float32, rows, cols int) []float32 {
	out := make([]float32, len(m))
	for r := range rows {
		for c := range cols {
			out[c*rows+r] = m[r*cols+c]
		}
	}
	return out
}

// ignored are tensors a GPT-2 file may hold that carry no weights: the
// attention's causal mask buffers (older transformers saved them).
func ignored(short string) bool {
	return strings.HasPrefix(short, "h.") && (strings.HasSuffix(short, ".attn.bias") || strings.HasSuffix(short, ".attn.masked_bias"))
}

// params assembles Ark's flat parameter buffer in cfg.ParamLayout order.
func (t *tensors) params(cfg train.Config) ([]float32, error) {
	C, V, T := uint64(cfg.Width), uint64(cfg.Vocab), uint64(cfg.Context)
	used := map[string]bool{}
	byName := map[string][]float32{}
	type src struct {
		hf        string
		shape     []uint64
		transpose bool // Conv1D [in, out] -> [out, in]
	}
	srcs := map[string]src{
		"wte": {"wte.weight", []uint64{V, C}, false}, "wpe": {"wpe.weight", []uint64{T, C}, false},
		"lnfw": {"ln_f.weight", []uint64{C}, false}, "lnfb": {"ln_f.bias", []uint64{C}, false},
	}
	for l := range cfg.Layers {
		a, h := fmt.Sprintf("h%d.", l), fmt.Sprintf("h.%d.", l)
		for k, s := range map[string]src{
			"ln1w": {"ln_1.weight", []uint64{C}, false}, "ln1b": {"ln_1.bias", []uint64{C}, false},
			"wqkv": {"attn.c_attn.weight", []uint64{C, 3 * C}, true}, "bqkv": {"attn.c_attn.bias", []uint64{3 * C}, false},
			"wo": {"attn.c_proj.weight", []uint64{C, C}, true}, "bo": {"attn.c_proj.bias", []uint64{C}, false},
			"ln2w": {"ln_2.weight", []uint64{C}, false}, "ln2b": {"ln_2.bias", []uint64{C}, false},
			"wfc": {"mlp.c_fc.weight", []uint64{C, 4 * C}, true}, "bfc": {"mlp.c_fc.bias", []uint64{4 * C}, false},
			"wp": {"mlp.c_proj.weight", []uint64{4 * C, C}, true}, "bp": {"mlp.c_proj.bias", []uint64{C}, false},
		} {
			srcs[a+k] = src{h + s.hf, s.shape, s.transpose}
		}
	}
	out := make([]float32, 0, cfg.NumParams())
	for _, p := range cfg.ParamLayout() {
		s, ok := srcs[p.Name]
		if !ok {
			return nil, fmt.Errorf("hfimport: no GPT-2 tensor for Ark parameter %q", p.Name) // a layout this importer does not know
		}
		v, err := t.get(s.hf, s.shape, used)
		if err != nil {
			return nil, err
		}
		if s.transpose {
			v = transpose(v, int(s.shape[0]), int(s.shape[1]))
		}
		if len(v) != p.Size {
			return nil, fmt.Errorf("hfimport: tensor %q has %d elements, Ark's %q %d", s.hf, len(v), p.Name, p.Size)
		}
		byName[p.Name] = v
		out = append(out, v...)
	}
	// The output layer must be the embedding (GPT-2 ties them; a file may
	// still hold the copy).
	if _, ok := t.names["lm_head.weight"]; ok {
		head, err := t.get("lm_head.weight", []uint64{V, C}, used)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(head, byName["wte"]) {
			return nil, fmt.Errorf("%w: lm_head.weight differs from wte.weight: Ark ties the output layer to the embedding", ErrUnsupported)
		}
	}
	var extra []string
	for short, name := range t.names {
		if !used[short] && !ignored(short) {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return nil, fmt.Errorf("%w: model.safetensors has tensors a GPT-2 of %d layers does not: %s", ErrUnsupported, cfg.Layers, strings.Join(extra, ", "))
	}
	return out, nil
}
