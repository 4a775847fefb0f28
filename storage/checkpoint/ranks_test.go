package checkpoint_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/ark-sched/ark/storage/checkpoint"
	"github.com/ark-sched/ark/storage/crypt"
)

// TestGangCommit: each rank puts its own shards concurrently, rank 0
// commits the manifest, and the result loads like a single-writer save.
func TestGangCommit(t *testing.T) {
	ctx := t.Context()
	s, _ := newFileStore(t)
	k, _ := crypt.NewKey("k", bytes.Repeat([]byte{5}, 32))
	kr := crypt.NewKeyring()
	kr.Add("ns", k)
	opts := checkpoint.SaveOptions{Key: k, ChunkSize: 4096}
	st := testState("gang", 9, 4, 10_000)
	ref := st.Ref()
	writes := make([]*checkpoint.ShardWrite, len(st.Shards))
	var wg sync.WaitGroup
	for i := range st.Shards {
		wg.Go(func() {
			w, err := checkpoint.PutShard(ctx, s, ref, st.Shards[i], opts)
			if err != nil {
				t.Errorf("rank %d: %v", i, err)
			}
			writes[i] = w
		})
	}
	wg.Wait()
	if _, err := checkpoint.Open(ctx, s, ref, kr); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Fatalf("before the commit Open = %v, want ErrNotFound", err)
	}
	h := checkpoint.Header{Job: "gang", Step: 9, WorldSize: 4}
	if _, err := checkpoint.CommitShards(ctx, s, h, writes[:3], opts); !errors.Is(err, checkpoint.ErrInvalid) {
		t.Errorf("commit without rank 3 = %v, want ErrInvalid", err)
	}
	// Ranks report in any order.
	writes[0], writes[3] = writes[3], writes[0]
	if _, err := checkpoint.CommitShards(ctx, s, h, writes, opts); err != nil {
		t.Fatal(err)
	}
	c, err := checkpoint.Open(ctx, s, ref, kr)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range st.Shards {
		st.Shards[i].Name = got.Shards[i].Name // defaulted names
	}
	equalStates(t, got, st)
}
