package checkpoint_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/storage"
	"github.com/ark-sched/ark/storage/checkpoint"
	"github.com/ark-sched/ark/storage/crypt"
	"github.com/ark-sched/ark/storage/filestore"
	"github.com/ark-sched/ark/storage/storagetest"
)

// testState builds a checkpoint of world ranks, each with one shard of
// three tensors whose bytes depend on step.
func testState(job string, step int64, world, tensorBytes int) *checkpoint.State {
	st := &checkpoint.State{Job: job, Step: step, WorldSize: world, Metadata: map[string]string{"loss": "2.5"}}
	for r := range world {
		sh := checkpoint.Shard{Rank: r}
		for i, name := range []string{"embed", "attn", "adam.m"} {
			seed := uint64(step)*1000 + uint64(r)*10 + uint64(i)
			sh.Tensors = append(sh.Tensors, checkpoint.Tensor{
				Name: fmt.Sprintf("rank%d.%s", r, name), DType: "f32", Shape: []int64{int64(tensorBytes / 4)},
				Data: storagetest.Payload(seed, tensorBytes+i), // uneven sizes
			})
		}
		st.Shards = append(st.Shards, sh)
	}
	return st
}

func newFileStore(t *testing.T) (*filestore.Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func equalStates(t *testing.T, got, want *checkpoint.State) {
	t.Helper()
	if got.Job != want.Job || got.Step != want.Step || got.WorldSize != want.WorldSize || len(got.Shards) != len(want.Shards) {
		t.Fatalf("loaded %s/%d world %d with %d shards, want %s/%d world %d with %d shards",
			got.Job, got.Step, got.WorldSize, len(got.Shards), want.Job, want.Step, want.WorldSize, len(want.Shards))
	}
	for i := range want.Shards {
		g, w := got.Shards[i], want.Shards[i]
		if g.Rank != w.Rank || len(g.Tensors) != len(w.Tensors) {
			t.Fatalf("shard %d: rank %d with %d tensors, want rank %d with %d", i, g.Rank, len(g.Tensors), w.Rank, len(w.Tensors))
		}
		for j := range w.Tensors {
			gt, wt := g.Tensors[j], w.Tensors[j]
			if gt.Name != wt.Name || gt.DType != wt.DType || !slices.Equal(gt.Shape, wt.Shape) || !bytes.Equal(gt.Data, wt.Data) {
				t.Fatalf("tensor %s differs after load", wt.Name)
			}
		}
	}
}

func TestSaveLoad(t *testing.T) {
	s, _ := newFileStore(t)
	ctx := t.Context()
	st := testState("ft", 50, 3, 10_000)
	m, err := checkpoint.Save(ctx, s, st, checkpoint.SaveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Shards) != 3 || len(m.Tensors) != 9 || m.Shards[2].Name != "rank00002-000" {
		t.Fatalf("manifest: %d shards, %d tensors, names %v", len(m.Shards), len(m.Tensors), m.Shards)
	}
	c, err := checkpoint.Open(ctx, s, checkpoint.Ref{Job: "ft", Step: 50}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Manifest.Metadata["loss"] != "2.5" {
		t.Errorf("metadata lost: %v", c.Manifest.Metadata)
	}
	got, err := c.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	equalStates(t, got, st)
	if _, err := c.Verify(ctx, nil); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if _, err := checkpoint.Open(ctx, s, checkpoint.Ref{Job: "ft", Step: 51}, nil); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Errorf("Open(missing) = %v, want ErrNotFound", err)
	}
}

func TestSaveInvalid(t *testing.T) {
	s, _ := newFileStore(t)
	tests := []struct {
		name   string
		mutate func(st *checkpoint.State)
	}{
		{"bad job", func(st *checkpoint.State) { st.Job = "../x" }},
		{"negative step", func(st *checkpoint.State) { st.Step = -1 }},
		{"no shards", func(st *checkpoint.State) { st.Shards = nil }},
		{"rank out of range", func(st *checkpoint.State) { st.Shards[0].Rank = 9 }},
		{"duplicate tensor", func(st *checkpoint.State) { st.Shards[1].Tensors[0].Name = st.Shards[0].Tensors[0].Name }},
		{"bad shard name", func(st *checkpoint.State) { st.Shards[0].Name = "a/b" }},
	}
	for _, tt := range tests {
		st := testState("ft", 1, 2, 10)
		tt.mutate(st)
		if _, err := checkpoint.Save(t.Context(), s, st, checkpoint.SaveOptions{}); !errors.Is(err, checkpoint.ErrInvalid) {
			t.Errorf("%s: Save = %v, want ErrInvalid", tt.name, err)
		}
	}
}

func TestCorruptShardIsNamed(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		name    string
		corrupt func(path string) error
		want    string
	}{
		{"flipped byte", func(p string) error {
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0x40
			return os.WriteFile(p, b, 0o644)
		}, "sha256"},
		{"truncated", func(p string) error { return os.Truncate(p, 100) }, "bytes, manifest says"},
		{"extended", func(p string) error {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			f.Write([]byte("x"))
			return f.Close()
		}, "longer than"},
		{"missing", os.Remove, "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := newFileStore(t)
			st := testState("ft", 7, 2, 5000)
			if _, err := checkpoint.Save(ctx, s, st, checkpoint.SaveOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := tt.corrupt(filepath.Join(dir, "ft", "000000000007", "rank00001-000")); err != nil {
				t.Fatal(err)
			}
			c, err := checkpoint.Open(ctx, s, checkpoint.Ref{Job: "ft", Step: 7}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for what, err := range map[string]error{
				"Load": func() error { _, err := c.Load(ctx); return err }(),
				"Verify": func() error {
					res, err := c.Verify(ctx, nil)
					if len(res) != 2 || res[0].Err != nil || res[1].Err == nil {
						t.Errorf("Verify results = %+v, want only shard 1 failing", res)
					}
					return err
				}(),
			} {
				if !errors.Is(err, checkpoint.ErrCorruptShard) || !strings.Contains(err.Error(), "rank00001-000") ||
					!strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s = %v, want ErrCorruptShard naming rank00001-000 and %q", what, err, tt.want)
				}
			}
		})
	}
}

func TestLatestAndRetain(t *testing.T) {
	ctx := t.Context()
	s, _ := newFileStore(t)
	if _, err := checkpoint.Latest(ctx, s, "ft", nil); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Fatalf("Latest on an empty store = %v, want ErrNotFound", err)
	}
	for _, step := range []int64{10, 20, 30, 40} {
		if _, err := checkpoint.Save(ctx, s, testState("ft", step, 1, 100), checkpoint.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Leftovers: step 15 never got its manifest (crashed save), step 50 is
	// being written, step 45 has a corrupt manifest.
	put := func(key, data string) {
		if err := s.Put(ctx, key, strings.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	put("ft/000000000015/rank00000-000", "partial")
	put("ft/000000000050/rank00000-000", "in flight")
	put("ft/000000000045/rank00000-000", "x")
	put("ft/000000000045/MANIFEST.json", "{not json")
	put("other/000000000099/MANIFEST.json", "{}")

	c, err := checkpoint.Latest(ctx, s, "ft", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Ref.Step != 40 {
		t.Fatalf("Latest = step %d, want 40 (45's manifest is corrupt, 50 has none)", c.Ref.Step)
	}
	deleted, err := checkpoint.Retain(ctx, s, "ft", 2)
	if err != nil {
		t.Fatal(err)
	}
	var steps []int64
	for _, r := range deleted {
		steps = append(steps, r.Step)
	}
	// 45 counts as complete for retention (its manifest object exists) and
	// is the newest, so 40 and 45 are kept.
	if want := []int64{10, 15, 20, 30}; !slices.Equal(steps, want) {
		t.Errorf("Retain deleted %v, want %v", steps, want)
	}
	infos, err := checkpoint.List(ctx, s, "ft")
	if err != nil {
		t.Fatal(err)
	}
	steps = nil
	for _, in := range infos {
		steps = append(steps, in.Step)
	}
	if want := []int64{40, 45, 50}; !slices.Equal(steps, want) {
		t.Errorf("after Retain: %v, want %v", steps, want)
	}
	if _, err := checkpoint.Retain(ctx, s, "ft", 0); err == nil {
		t.Errorf("Retain(keep=0) accepted")
	}
}

func TestFailedSaveLeavesNothing(t *testing.T) {
	ctx := t.Context()
	for _, failOn := range []string{"rank00001", ckptManifest} {
		s, _ := newFileStore(t)
		fs := &flakyStore{Store: s, failOn: failOn}
		_, err := checkpoint.Save(ctx, fs, testState("ft", 5, 3, 1000), checkpoint.SaveOptions{})
		if !errors.Is(err, errInjected) {
			t.Fatalf("fail on %s: Save = %v, want the injected error", failOn, err)
		}
		objs, _ := s.List(ctx, "")
		if len(objs) != 0 {
			t.Errorf("fail on %s: failed save left %v", failOn, objs)
		}
		if _, err := checkpoint.Latest(ctx, s, "ft", nil); !errors.Is(err, checkpoint.ErrNotFound) {
			t.Errorf("fail on %s: Latest = %v", failOn, err)
		}
	}
}

func TestEncrypted(t *testing.T) {
	ctx := t.Context()
	s, dir := newFileStore(t)
	kr := crypt.NewKeyring()
	k, _ := crypt.NewKey("nlp-2026", bytes.Repeat([]byte{7}, 32))
	kr.Add("nlp", k)
	st := testState("ft", 3, 2, 3000)
	st.Namespace = "nlp"
	m, err := checkpoint.Save(ctx, s, st, checkpoint.SaveOptions{Key: k, ChunkSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if m.Encryption == nil || m.Encryption.KeyID != "nlp-2026" {
		t.Fatalf("manifest encryption = %+v", m.Encryption)
	}
	// The store never sees plaintext.
	for _, sh := range st.Shards {
		raw, _ := os.ReadFile(filepath.Join(dir, "ft", "000000000003", sh.Name))
		if bytes.Contains(raw, sh.Tensors[0].Data[:64]) {
			t.Errorf("plaintext of %s found in the store", sh.Name)
		}
	}
	ref := checkpoint.Ref{Job: "ft", Step: 3}
	c, err := checkpoint.Open(ctx, s, ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(ctx, nil); err != nil {
		t.Errorf("Verify without the key: %v", err)
	}
	if _, err := c.Load(ctx); !errors.Is(err, crypt.ErrNoKey) {
		t.Errorf("Load without the key = %v, want ErrNoKey", err)
	}
	c, _ = checkpoint.Open(ctx, s, ref, kr)
	got, err := c.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	equalStates(t, got, st)

	// Swapping two sealed shards (and fixing the manifest's checksums so
	// only the sealing can tell) fails authentication, naming the shard.
	p0 := filepath.Join(dir, "ft", "000000000003", "rank00000-000")
	p1 := filepath.Join(dir, "ft", "000000000003", "rank00001-000")
	b0, _ := os.ReadFile(p0)
	b1, _ := os.ReadFile(p1)
	os.WriteFile(p0, b1, 0o644)
	os.WriteFile(p1, b0, 0o644)
	c.Manifest.Shards[0].SHA256, c.Manifest.Shards[1].SHA256 = c.Manifest.Shards[1].SHA256, c.Manifest.Shards[0].SHA256
	if _, err := c.ReadShard(ctx, "rank00000-000"); !errors.Is(err, checkpoint.ErrCorruptShard) || !errors.Is(err, crypt.ErrAuth) ||
		!strings.Contains(err.Error(), "rank00000-000") {
		t.Errorf("swapped sealed shard: %v, want ErrCorruptShard and ErrAuth naming rank00000-000", err)
	}
}

var errInjected = errors.New("injected failure")

const ckptManifest = checkpoint.ManifestName

// flakyStore fails puts whose key contains failOn, after consuming part of
// the data.
type flakyStore struct {
	storage.Store
	failOn string
}

func (f *flakyStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if strings.Contains(key, f.failOn) {
		time.Sleep(10 * time.Millisecond)
		return fmt.Errorf("put %s: %w", key, errInjected)
	}
	return f.Store.Put(ctx, key, r, size)
}

func TestAsyncEncrypted(t *testing.T) {
	ctx := t.Context()
	s, _ := newFileStore(t)
	k, _ := crypt.NewKey("k", bytes.Repeat([]byte{1}, 32))
	kr := crypt.NewKeyring()
	kr.Add("ns", k)
	w := checkpoint.NewAsyncWriter(s, checkpoint.AsyncOptions{Save: checkpoint.SaveOptions{Key: k}})
	st := testState("ae", 1, 2, 3000)
	if _, err := w.Save(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := checkpoint.Latest(ctx, s, "ae", kr)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	equalStates(t, got, st)
}
