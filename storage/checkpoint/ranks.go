package checkpoint

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ark-sched/ark/storage"
	"github.com/ark-sched/ark/storage/crypt"
)

// ShardWrite is what PutShard reports: the manifest entries of one stored
// shard, for the rank that commits the manifest.
type ShardWrite struct {
	Shard   ShardInfo    `json:"shard"`
	Tensors []TensorInfo `json:"tensors"`
}

// Header is the part of a checkpoint's manifest that is not about shards.
type Header struct {
	Job       string
	Step      int64
	WorldSize int
	Namespace string
	Metadata  map[string]string
}

// PutShard stores one shard of a multi-rank checkpoint, as each rank of a
// gang does with its own shards; one rank then commits the manifest with
// CommitShards once every rank's PutShard has returned. The shard's name
// defaults to "rank%05d-000". opts.Key and opts.ChunkSize must be the same
// on every rank and in CommitShards.
func PutShard(ctx context.Context, s storage.Store, ref Ref, sh Shard, opts SaveOptions) (*ShardWrite, error) {
	if err := ref.validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if sh.Name == "" {
		sh.Name = fmt.Sprintf("rank%05d-000", sh.Rank)
	}
	if !ValidName(sh.Name) || sh.Name == ManifestName || sh.Rank < 0 {
		return nil, fmt.Errorf("%w: shard %q of rank %d", ErrInvalid, sh.Name, sh.Rank)
	}
	w := &ShardWrite{Shard: ShardInfo{Name: sh.Name, Rank: sh.Rank}}
	var off int64
	for _, t := range sh.Tensors {
		w.Tensors = append(w.Tensors, TensorInfo{Name: t.Name, Shard: sh.Name, Offset: off, Size: int64(len(t.Data)), DType: t.DType, Shape: t.Shape})
		off += int64(len(t.Data))
	}
	w.Shard.Size, w.Shard.StoredSize = off, off
	if opts.Key != nil {
		w.Shard.StoredSize = crypt.SealedSize(off, opts.ChunkSize)
	}
	sum, err := putShard(ctx, s, ref, &sh, w.Shard, opts)
	if err != nil {
		return nil, err
	}
	w.Shard.SHA256 = sum
	return w, nil
}

// CommitShards writes the manifest of a multi-rank checkpoint from the
// ShardWrites every rank reported, which makes it exist. Every rank in
// [0, WorldSize) must have written at least one shard.
func CommitShards(ctx context.Context, s storage.Store, h Header, writes []*ShardWrite, opts SaveOptions) (*Manifest, error) {
	opts = opts.withDefaults()
	now := timeNow(opts)
	m := &Manifest{
		FormatVersion: FormatVersion, Job: h.Job, Step: h.Step, WorldSize: h.WorldSize,
		Created: now, Namespace: h.Namespace, Metadata: h.Metadata, Tensors: []TensorInfo{},
	}
	if opts.Key != nil {
		m.Encryption = &Encryption{Algorithm: crypt.Algorithm, KeyID: opts.Key.ID, ChunkSize: opts.ChunkSize}
	}
	ranks := make([]bool, max(h.WorldSize, 0))
	sorted := slices.Clone(writes)
	slices.SortFunc(sorted, func(a, b *ShardWrite) int {
		if a.Shard.Rank != b.Shard.Rank {
			return a.Shard.Rank - b.Shard.Rank
		}
		return strings.Compare(a.Shard.Name, b.Shard.Name)
	})
	for _, w := range sorted {
		m.Shards = append(m.Shards, w.Shard)
		m.Tensors = append(m.Tensors, w.Tensors...)
		if w.Shard.Rank >= 0 && w.Shard.Rank < len(ranks) {
			ranks[w.Shard.Rank] = true
		}
	}
	if i := slices.Index(ranks, false); i >= 0 {
		return nil, fmt.Errorf("%w: checkpoint %s: rank %d wrote no shard", ErrInvalid, Ref{h.Job, h.Step}, i)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := Commit(ctx, s, m); err != nil {
		return nil, err
	}
	return m, nil
}
