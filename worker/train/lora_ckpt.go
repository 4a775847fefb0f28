package train

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"

	"github.com/ark-sched/ark/kernels"
	"github.com/ark-sched/ark/storage"
	"github.com/ark-sched/ark/storage/checkpoint"
)

// An adapter checkpoint is an ordinary checkpoint (same storage format)
// whose parameters tensor is named "lora" instead of "params", with the
// metadata keys below next to "model" and "config" (the base's shape).
const (
	loraTensor      = "lora"
	metaLoRA        = "lora"             // LoRAConfig as JSON
	metaLoRABase    = "lora_base"        // the base checkpoint's URI, resolved to its step
	metaLoRABaseSHA = "lora_base_sha256" // Model.ParamsSHA256 of that base
)

// ParamsSHA256 is the hex SHA-256 of the model's parameters as float32
// little-endian bytes (what a checkpoint's params tensor holds): the
// identity of a base that adapters record and check.
func (m *Model) ParamsSHA256() (string, error) {
	b, err := bufferBytes(m.d, m.params)
	if err != nil {
		return "", fmt.Errorf("checksum parameters: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// loadBase loads a full checkpoint's parameters into m (fresh moments),
// refusing an adapter checkpoint with a message that says what it is.
func (m *Model) loadBase(ctx context.Context, c *checkpoint.Checkpoint) error {
	st, err := c.Load(ctx)
	if err != nil {
		return err
	}
	return m.loadState(st, false)
}

// resolvedURI names the checkpoint c.Ref that uri (STORE/JOB/STEP or
// STORE/JOB for the newest) resolved to, so an adapter records the exact
// base step.
func resolvedURI(uri string, ref checkpoint.Ref) (string, error) {
	uri = fileURI(uri)
	if store, r, err := checkpoint.SplitURI(uri); err == nil && r == ref {
		return checkpoint.JoinURI(store, ref), nil
	}
	store, _, err := SplitJobURI(uri)
	if err != nil {
		return "", err
	}
	return checkpoint.JoinURI(store, ref), nil
}

// describe adds the adapter's metadata to a checkpoint's.
func (a *Adapter) describe(meta map[string]string) error {
	cfg, err := json.Marshal(a.Cfg)
	if err != nil {
		return err
	}
	meta[metaLoRA] = string(cfg)
	meta[metaLoRABase] = a.Base
	meta[metaLoRABaseSHA] = a.BaseSHA256
	return nil
}

// loadState copies an adapter checkpoint's parameters (and, withOptimizer,
// its moments) into a, after checking it is an adapter of the same shape
// trained on the base a is attached to (a.BaseSHA256, set by the caller).
func (a *Adapter) loadState(st *checkpoint.State, withOptimizer bool) error {
	w, err := adapterWeights(st)
	if err != nil {
		return err
	}
	if err := a.accepts(w); err != nil {
		return err
	}
	load := []namedBuffer{{loraTensor, a.params}}
	if withOptimizer {
		load = append(load, namedBuffer{"adam_m", a.m}, namedBuffer{"adam_v", a.v})
	}
	return copyTensorsIn(a.d, stateTensors(st), load, "adapter ")
}

// namedBuffer is a device buffer and the checkpoint tensor it is saved as.
type namedBuffer struct {
	name string
	b    kernels.Buffer
}

// copyTensorsIn copies each named tensor of a checkpoint into its buffer,
// checking it exists and has the buffer's size; what ("adapter ") prefixes
// the errors.
func copyTensorsIn(d kernels.Device, tensors map[string][]byte, load []namedBuffer, what string) error {
	for _, l := range load {
		data, ok := tensors[l.name]
		if !ok {
			return fmt.Errorf("%w: %scheckpoint has no tensor %q", ErrConfig, what, l.name)
		}
		if len(data) != 4*l.b.Len() {
			return fmt.Errorf("%w: %stensor %q has %d bytes, want %d", ErrConfig, what, l.name, len(data), 4*l.b.Len())
		}
		if err := d.CopyIn(l.b, data); err != nil {
			return fmt.Errorf("load %s%s: %w", what, l.name, err)
		}
	}
	return nil
}

// accepts checks that w fits a: same model, same LoRA shape, same base.
func (a *Adapter) accepts(w *AdapterWeights) error {
	switch {
	case w.Model != a.Model:
		return fmt.Errorf("%w: adapter for model %+v, want %+v", ErrConfig, w.Model, a.Model)
	case w.Cfg.Rank != a.Cfg.Rank || w.Cfg.Alpha != a.Cfg.Alpha || fmt.Sprint(w.Cfg.Targets) != fmt.Sprint(a.Cfg.Targets):
		return fmt.Errorf("%w: adapter checkpoint is lora %s, this run trains lora %s", ErrConfig, w.Cfg, a.Cfg)
	case a.BaseSHA256 != "" && w.BaseSHA256 != a.BaseSHA256:
		return fmt.Errorf("%w: adapter was trained on base %s (parameters sha256 %.12s…), not on this base (sha256 %.12s…)",
			ErrConfig, w.Base, w.BaseSHA256, a.BaseSHA256)
	}
	return nil
}

func stateTensors(st *checkpoint.State) map[string][]byte {
	tensors := map[string][]byte{}
	for _, sh := range st.Shards {
		for _, t := range sh.Tensors {
			tensors[t.Name] = t.Data
		}
	}
	return tensors
}

// AdapterWeights is an adapter checkpoint read into host memory: what the
// serving runtime caches between its object store and its compute slots.
type AdapterWeights struct {
	Cfg              LoRAConfig
	Model            Config
	Base, BaseSHA256 string
	Step             int64
	Params           []float32 // the adapter layout (see Adapter)
}

// Bytes is the host memory the weights take.
func (w *AdapterWeights) Bytes() int64 { return 4 * int64(len(w.Params)) }

// adapterWeights reads a loaded adapter checkpoint's description and
// parameters.
func adapterWeights(st *checkpoint.State) (*AdapterWeights, error) {
	meta := st.Metadata
	if meta[metaLoRA] == "" {
		return nil, fmt.Errorf("%w: checkpoint %s is not a lora adapter (no %q metadata)", ErrConfig, st.Ref(), metaLoRA)
	}
	w := &AdapterWeights{Base: meta[metaLoRABase], BaseSHA256: meta[metaLoRABaseSHA], Step: st.Step}
	if err := json.Unmarshal([]byte(meta[metaLoRA]), &w.Cfg); err != nil {
		return nil, fmt.Errorf("%w: checkpoint %s: lora metadata: %v", ErrConfig, st.Ref(), err)
	}
	if err := json.Unmarshal([]byte(meta["config"]), &w.Model); err != nil {
		return nil, fmt.Errorf("%w: checkpoint %s: model config in metadata: %v", ErrConfig, st.Ref(), err)
	}
	if err := w.Cfg.Validate(w.Model); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", st.Ref(), err)
	}
	data, ok := stateTensors(st)[loraTensor]
	if !ok {
		return nil, fmt.Errorf("%w: checkpoint %s has no tensor %q", ErrConfig, st.Ref(), loraTensor)
	}
	if n := w.Cfg.NumParams(w.Model); len(data) != 4*n {
		return nil, fmt.Errorf("%w: checkpoint %s: tensor %q has %d bytes, want %d for lora %s", ErrConfig, st.Ref(), loraTensor, len(data), 4*n, w.Cfg)
	}
	w.Params = make([]float32, len(data)/4)
	for i := range w.Params {
		w.Params[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return w, nil
}

// ReadAdapter reads an adapter checkpoint (STORE/JOB/STEP, or STORE/JOB for
// the newest) into host memory.
func ReadAdapter(ctx context.Context, uri string, keys *CheckpointKeys) (*AdapterWeights, error) {
	c, err := OpenCheckpoint(ctx, uri, keys)
	if err != nil {
		return nil, err
	}
	if c.Manifest.Metadata[metaLoRA] == "" {
		return nil, fmt.Errorf("%w: checkpoint %s is not a LoRA adapter (its manifest records no adapter: a full model checkpoint?)", ErrConfig, c.Ref)
	}
	st, err := c.Load(ctx)
	if err != nil {
		return nil, err
	}
	return adapterWeights(st)
}

// ErrNotAdapterOfBase: an adapter checkpoint made for another base than
// the one it is loaded on (another shape, or other parameters). It is an
// ErrConfig: no retry will change it.
var ErrNotAdapterOfBase = fmt.Errorf("%w: not an adapter of this base", ErrConfig)

// CheckBase says whether w was trained on the base whose parameters hash
// to baseSHA256 (Model.ParamsSHA256). Its error gives both sides, so that
// whoever added the adapter sees which base it needs.
func (w *AdapterWeights) CheckBase(model Config, baseSHA256 string) error {
	switch {
	case w.Model != model:
		return fmt.Errorf("%w: made for model %s, this base is %s", ErrNotAdapterOfBase, w.Model.shape(), model.shape())
	case w.BaseSHA256 != baseSHA256:
		return fmt.Errorf("%w: trained on base %s (parameters sha256 %.12s…), this base's parameters are sha256 %.12s…",
			ErrNotAdapterOfBase, w.Base, w.BaseSHA256, baseSHA256)
	}
	return nil
}

// Upload makes a device adapter holding w's parameters (no optimizer
// state: for evaluation and serving).
func (w *AdapterWeights) Upload(d kernels.Device) (*Adapter, error) {
	a, err := NewAdapter(d, w.Model, w.Cfg)
	if err != nil {
		return nil, err
	}
	a.Base, a.BaseSHA256 = w.Base, w.BaseSHA256
	if err := kernels.WriteFloat32(d, a.params, w.Params); err != nil {
		a.Free()
		return nil, fmt.Errorf("upload adapter: %w", err)
	}
	return a, nil
}

// LoadAdapter reads an adapter checkpoint, checks it was trained on m's
// exact parameters, and uploads it to m's device (not attached: see
// SetAdapter).
func (m *Model) LoadAdapter(ctx context.Context, uri string, keys *CheckpointKeys) (*Adapter, error) {
	w, err := ReadAdapter(ctx, uri, keys)
	if err != nil {
		return nil, err
	}
	sum, err := m.ParamsSHA256()
	if err != nil {
		return nil, err
	}
	if err := w.CheckBase(m.Cfg, sum); err != nil {
		return nil, fmt.Errorf("adapter %s: %w", uri, err)
	}
	return w.Upload(m.d)
}

// SaveAdapter writes w as the adapter checkpoint JOB/STEP in s (without
// optimizer state: a published adapter, as serving and eval read it).
func SaveAdapter(ctx context.Context, s storage.Store, job string, step int64, w *AdapterWeights, keys *CheckpointKeys) error {
	cfg, err := json.Marshal(w.Model)
	if err != nil {
		return err
	}
	a := &Adapter{Cfg: w.Cfg, Base: w.Base, BaseSHA256: w.BaseSHA256}
	meta := map[string]string{"config": string(cfg), "layout": "lora adapter: " + loraTensor}
	if err := a.describe(meta); err != nil {
		return err
	}
	st := &checkpoint.State{
		Job: job, Step: step, WorldSize: 1, Metadata: meta,
		Shards: []checkpoint.Shard{{Rank: 0, Tensors: []checkpoint.Tensor{{
			Name: loraTensor, DType: "f32", Shape: []int64{int64(len(w.Params))}, Data: append([]byte(nil), collectiveBytes(w.Params)...),
		}}}},
	}
	if _, err := checkpoint.Save(ctx, s, st, checkpoint.SaveOptions{Key: keys.Seal()}); err != nil {
		return fmt.Errorf("save adapter %s/%d: %w", job, step, err)
	}
	return nil
}
