package checkpoint_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ark-sched/ark/storage/checkpoint"
	"github.com/ark-sched/ark/storage/crypt"
)

// TestCopy: a copy loads as the original (a sealed one still sealed, with
// the same key), progress reaches the total, and a second copy to the same
// place is ErrExists.
func TestCopy(t *testing.T) {
	ctx := t.Context()
	src, _ := newFileStore(t)
	dst, _ := newFileStore(t)
	k, err := crypt.NewKey("nlp-1", bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	st := testState("ft", 40, 2, 20_000)
	st.Namespace = "nlp"
	if _, err := checkpoint.Save(ctx, src, st, checkpoint.SaveOptions{Key: k, ChunkSize: 4096}); err != nil {
		t.Fatal(err)
	}
	ref := checkpoint.Ref{Job: "ft", Step: 40}
	c, err := checkpoint.Open(ctx, src, ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	var done, total int64
	if err := checkpoint.Copy(ctx, c, dst, func(d, tot int64) { done, total = d, tot }); err != nil {
		t.Fatal(err)
	}
	var stored int64
	for _, sh := range c.Manifest.Shards {
		stored += sh.StoredSize
	}
	if done != total || total != stored {
		t.Errorf("progress ended at %d of %d, want all %d stored bytes", done, total, stored)
	}
	ring := crypt.NewKeyring()
	ring.Add("nlp", k)
	cc, err := checkpoint.Open(ctx, dst, ref, ring)
	if err != nil {
		t.Fatal(err)
	}
	if cc.Manifest.Encryption == nil {
		t.Error("the copy of a sealed checkpoint is not sealed")
	}
	got, err := cc.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	equalStates(t, got, st)
	if err := checkpoint.Copy(ctx, c, dst, nil); !errors.Is(err, checkpoint.ErrExists) {
		t.Errorf("second copy: %v, want ErrExists", err)
	}
}

// TestCopyCorrupt: a shard that fails its check stops the copy, which
// leaves nothing behind: no manifest, no shard.
func TestCopyCorrupt(t *testing.T) {
	ctx := t.Context()
	src, srcDir := newFileStore(t)
	dst, _ := newFileStore(t)
	if _, err := checkpoint.Save(ctx, src, testState("ft", 7, 3, 5000), checkpoint.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(srcDir, "ft", "000000000007", "rank00001-000")
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 1
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := checkpoint.Open(ctx, src, checkpoint.Ref{Job: "ft", Step: 7}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.Copy(ctx, c, dst, nil); !errors.Is(err, checkpoint.ErrCorruptShard) {
		t.Fatalf("copy of a corrupt checkpoint: %v, want ErrCorruptShard", err)
	}
	objs, err := dst.List(ctx, "")
	if err != nil || len(objs) != 0 {
		t.Fatalf("a failed copy left %v (%v)", objs, err)
	}
}
