package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/ark-sched/ark/kernels"
	"github.com/ark-sched/ark/storage"
	"github.com/ark-sched/ark/storage/checkpoint"
	"github.com/ark-sched/ark/storage/stores"
)

// SplitJobURI splits a job's checkpoint location, STORE_URI/JOB (what the
// agent sets as ARK_CHECKPOINT_URI: CHECKPOINT_STORE/NAMESPACE/JOB_ID),
// into the store URI and the job name. A path without a scheme is a local
// directory.
func SplitJobURI(uri string) (store, job string, err error) {
	uri = fileURI(uri)
	// What the store could not open (not a SCHEME://... URI), or a #fragment
	// that would swallow the STEP a checkpoint URI appends, is no location.
	if u, err := url.Parse(uri); err != nil || u.Scheme == "" || u.Opaque != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("%w: checkpoint location %q: want STORE_URI/JOB, a URI without a #fragment", ErrConfig, uri)
	}
	base, query, hasQuery := strings.Cut(uri, "?")
	base = strings.TrimRight(base, "/")
	i := strings.LastIndex(base, "/")
	// SCHEME://JOB and SCHEME:///JOB name no store, but file:///JOB is a
	// job at the root.
	if i < 0 || strings.HasSuffix(base[:i], ":/") || strings.HasSuffix(base[:i], "://") && base[:i] != "file://" {
		return "", "", fmt.Errorf("%w: checkpoint location %q: want STORE_URI/JOB", ErrConfig, uri)
	}
	store, job = base[:i], base[i+1:]
	if store == "file://" {
		store = "file:///"
	}
	if !checkpoint.ValidName(job) {
		return "", "", fmt.Errorf("%w: checkpoint location %q: job name %q", ErrConfig, uri, job)
	}
	if hasQuery {
		store += "?" + query
	}
	return store, job, nil
}

// fileURI turns a bare path into a file:// URI with an absolute path.
func fileURI(uri string) string {
	if strings.Contains(uri, "://") {
		return uri
	}
	if abs, err := filepath.Abs(uri); err == nil {
		uri = abs
	}
	return "file://" + uri
}

// OpenJobStore opens the store of a STORE_URI/JOB location and returns the
// job name.
func OpenJobStore(ctx context.Context, uri string) (storage.Store, string, error) {
	storeURI, job, err := SplitJobURI(uri)
	if err != nil {
		return nil, "", err
	}
	s, err := stores.Open(ctx, storeURI, stores.Options{CreateBucket: true})
	if err != nil {
		return nil, "", fmt.Errorf("open checkpoint store: %w", err)
	}
	return s, job, nil
}

// OpenCheckpoint opens a checkpoint named STORE_URI/JOB/STEP, or the newest
// complete one of STORE_URI/JOB. An encrypted checkpoint's shards open
// only with keys (see CheckpointKeys).
func OpenCheckpoint(ctx context.Context, uri string, keys *CheckpointKeys) (*checkpoint.Checkpoint, error) {
	uri = fileURI(uri)
	if storeURI, ref, err := checkpoint.SplitURI(uri); err == nil {
		if s, err := stores.Open(ctx, storeURI, stores.Options{}); err == nil {
			c, err := checkpoint.Open(ctx, s, ref, keys.keys())
			if err == nil || !errors.Is(err, checkpoint.ErrNotFound) {
				return c, err
			}
		}
	}
	s, job, err := OpenJobStore(ctx, uri)
	if err != nil {
		return nil, err
	}
	return checkpoint.Latest(ctx, s, job, keys.keys())
}

// LoadModel builds a model on d from a checkpoint (see OpenCheckpoint): its
// configuration from the manifest's metadata, its parameters from the
// shard, opened with keys, and the tokenizer it carries (bytes when it
// carries none). It returns the checkpoint's step. The model runs forward
// only (serving, generating, evaluating): it holds no gradients or
// optimizer moments, and a backward pass on it is an error.
func LoadModel(ctx context.Context, d kernels.Device, uri string, keys *CheckpointKeys) (*Model, int64, error) {
	c, err := OpenCheckpoint(ctx, uri, keys)
	if err != nil {
		return nil, 0, err
	}
	var cfg Config
	if err := json.Unmarshal([]byte(c.Manifest.Metadata["config"]), &cfg); err != nil {
		return nil, 0, fmt.Errorf("checkpoint %s: model config in metadata: %w", c.Ref, err)
	}
	st, err := c.Load(ctx)
	if err != nil {
		return nil, 0, err
	}
	m, err := newModel(d, cfg, false) // forward only: a quarter of the memory
	if err != nil {
		return nil, 0, err
	}
	if err := m.loadState(st, false); err != nil {
		return nil, 0, fmt.Errorf("checkpoint %s: %w", c.Ref, err)
	}
	return m, st.Step, nil
}

// loadState copies a checkpoint's parameters (and, withOptimizer, AdamW
// moments) into the model, and takes the tokenizer it carries; the
// configuration must match.
func (m *Model) loadState(st *checkpoint.State, withOptimizer bool) error {
	if st.Metadata[metaLoRA] != "" {
		return fmt.Errorf("%w: checkpoint %s is a lora adapter (of base %s), not a whole model: load the base and attach the adapter",
			ErrConfig, st.Ref(), st.Metadata[metaLoRABase])
	}
	if s := st.Metadata["config"]; s != "" {
		var cfg Config
		if err := json.Unmarshal([]byte(s), &cfg); err != nil {
			return fmt.Errorf("model config in metadata: %w", err)
		}
		if cfg != m.Cfg {
			return fmt.Errorf("%w: checkpoint holds model %+v, want %+v", ErrConfig, cfg, m.Cfg)
		}
	}
	tok, err := tokenizerOf(st)
	if err != nil {
		return err
	}
	if err := m.SetTokenizer(tok); err != nil {
		return err
	}
	load := []namedBuffer{{"params", m.params}}
	if withOptimizer {
		load = append(load, namedBuffer{"adam_m", m.m}, namedBuffer{"adam_v", m.v})
	} else if err := m.resetOptimizer(); err != nil {
		return err
	}
	return copyTensorsIn(m.d, stateTensors(st), load, "")
}

// bufferBytes returns a Float32 buffer's bytes: its own memory on a device
// with host access, else a copy.
func bufferBytes(d kernels.Device, b kernels.Buffer) ([]byte, error) {
	if h, ok := d.(kernels.HostAccess); ok {
		s, err := h.Float32s(b)
		if err != nil {
			return nil, err
		}
		return collectiveBytes(s), nil
	}
	out := make([]byte, 4*b.Len())
	return out, d.CopyOut(out, b)
}
