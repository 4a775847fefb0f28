package train

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ark-sched/ark/kernels/cpu"
	"github.com/ark-sched/ark/storage/checkpoint"
	"github.com/ark-sched/ark/storage/crypt"
	"github.com/ark-sched/ark/storage/filestore"
)

func nsKeys(t *testing.T, id string, b byte) *CheckpointKeys {
	t.Helper()
	k, err := crypt.NewKey(id, bytes.Repeat([]byte{b}, crypt.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return NewCheckpointKeys(k)
}

// trainJob runs a short single-rank job of o; it returns the trained
// parameters, or New's error.
func trainJob(t *testing.T, o Options) ([]float32, *Trainer, error) {
	t.Helper()
	m, err := NewModel(cpu.New(1), testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := New(context.Background(), m, nil, o)
	if err != nil {
		return nil, nil, err
	}
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return params(t, m), tr, nil
}

// TestCheckpointsSealedPerNamespace reproduces issue 14's threat: a tenant
// of namespace B who reaches namespace A's checkpoint files (a shared store,
// a base URI past the prefix checks) must not get A's model out of them.
func TestCheckpointsSealedPerNamespace(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	keysA, keysB := nsKeys(t, "nk-a", 1), nsKeys(t, "nk-b", 2)
	o := Options{ModelName: "gpt-test", Data: NewDataset(testText, 0.1), Steps: 2, Batch: 2, LR: 1e-2, Seed: 5,
		Store: store, Job: "ft", Keys: keysA}
	trained, _, err := trainJob(t, o)
	if err != nil {
		t.Fatal(err)
	}
	uri := "file://" + dir + "/ft"

	// The store holds ciphertext: no run of the model's parameters is in
	// any file, and the manifest names A's key.
	plain := collectiveBytes(trained[:64])
	var manifest string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, plain) {
			t.Errorf("%s holds the model's parameters in the clear", p)
		}
		if d.Name() == checkpoint.ManifestName {
			manifest = p
		}
		return nil
	})
	c, err := OpenCheckpoint(ctx, uri, keysA)
	if err != nil || c.Manifest.Encryption == nil || c.Manifest.Encryption.KeyID != "nk-a" {
		t.Fatalf("checkpoint %v: encryption %+v", err, c.Manifest.Encryption)
	}

	// A's own eval job (LoadModel with A's key) reads it.
	m, _, err := LoadModel(ctx, cpu.New(1), uri, keysA)
	if err != nil {
		t.Fatalf("A's eval: %v", err)
	}
	if !equal(params(t, m), trained) {
		t.Fatal("A's eval loaded other parameters")
	}
	// So does a later job of A's, as its base.
	later := o
	later.Store, later.Base = nil, uri
	if _, _, err := trainJob(t, later); err != nil {
		t.Fatalf("A's fine-tune from its own checkpoint: %v", err)
	}

	// B cannot: not as a model, not as a base, not without a key.
	for _, tt := range []struct {
		name string
		keys *CheckpointKeys
		want string
	}{
		{"B's key", keysB, "sealed with key nk-a, not this namespace's key nk-b"},
		{"no key", nil, "this task has no checkpoint key"},
		{"A's key after namespace-key delete (a new one)", nsKeys(t, "nk-a2", 3), "not this namespace's key nk-a2"},
	} {
		if _, _, err := LoadModel(ctx, cpu.New(1), uri, tt.keys); !errors.Is(err, crypt.ErrNoKey) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: load = %v, want ErrNoKey saying %q", tt.name, err, tt.want)
		}
		asBase := o
		asBase.Store, asBase.Base, asBase.Keys = nil, uri, tt.keys
		if _, _, err := trainJob(t, asBase); !errors.Is(err, crypt.ErrNoKey) || !strings.HasPrefix(err.Error(), "base ") {
			t.Errorf("%s: base = %v, want a base error with ErrNoKey", tt.name, err)
		}
	}
	// A job of A's whose key was deleted cannot resume from its old
	// checkpoint either.
	again := o
	again.Keys = nsKeys(t, "nk-a2", 3)
	if _, _, err := trainJob(t, again); !errors.Is(err, crypt.ErrNoKey) {
		t.Errorf("resume under a new key: %v, want ErrNoKey", err)
	}

	// B rewrites the manifest to name its own key: the shards are still
	// A's ciphertext and do not authenticate under B's key.
	b, _ := os.ReadFile(manifest)
	if err := os.WriteFile(manifest, bytes.Replace(b, []byte(`"nk-a"`), []byte(`"nk-b"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadModel(ctx, cpu.New(1), uri, keysB); !errors.Is(err, crypt.ErrAuth) {
		t.Errorf("forged manifest: load with B's key = %v, want ErrAuth", err)
	}
}

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("nk-1 AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n"), 0o400)
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("nk-1\n"), 0o400)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("nk-1 AQEB\n"), 0o400)
	k, err := ReadKeyFile(good)
	if err != nil || k.Seal().ID != "nk-1" {
		t.Fatalf("ReadKeyFile = %v, %v", k, err)
	}
	for _, p := range []string{bad, short, filepath.Join(dir, "none")} {
		if _, err := ReadKeyFile(p); err == nil {
			t.Errorf("%s accepted", filepath.Base(p))
		}
	}
	t.Setenv(KeyFileEnv, "")
	if k, err := TaskKeys(); k != nil || err != nil {
		t.Errorf("TaskKeys without the variable = %v, %v", k, err)
	}
	t.Setenv(KeyFileEnv, good)
	if k, err := TaskKeys(); err != nil || k.Seal().ID != "nk-1" {
		t.Errorf("TaskKeys = %v, %v", k, err)
	}
}
