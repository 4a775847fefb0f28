package checkpoint

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ark-sched/ark/storage"
	"github.com/ark-sched/ark/storage/crypt"
)

// Tensor is one named buffer of a checkpoint.
type Tensor struct {
	Name  string
	DType string  // optional: "f32", "bf16", ...
	Shape []int64 // optional
	Data  []byte
}

// Shard is one shard object: the concatenation of its tensors' data.
type Shard struct {
	// Name of the object; default "rank%05d-%03d" (rank, index in rank).
	Name    string
	Rank    int
	Tensors []Tensor
}

// State is a checkpoint as the trainer hands it over.
type State struct {
	Job       string
	Step      int64
	WorldSize int
	Namespace string
	Metadata  map[string]string
	Shards    []Shard
}

// Ref returns the checkpoint's name.
func (s *State) Ref() Ref { return Ref{Job: s.Job, Step: s.Step} }

// Bytes returns the total tensor data size.
func (s *State) Bytes() int64 {
	var n int64
	for _, sh := range s.Shards {
		for _, t := range sh.Tensors {
			n += int64(len(t.Data))
		}
	}
	return n
}

// SaveOptions tunes Save.
type SaveOptions struct {
	// Concurrency is the number of shards uploaded at once. Default 4.
	Concurrency int
	// Key, when set, seals every shard with AES-256-GCM; the manifest
	// records its id.
	Key *crypt.Key
	// ChunkSize of sealed shards. Default crypt.DefaultChunkSize.
	ChunkSize int
	// Now stamps the manifest. Default time.Now.
	Now func() time.Time
}

// plan validates the state, names unnamed shards and builds the manifest
// skeleton (everything but the shards' stored sizes and checksums).
func plan(st *State, opts SaveOptions) (*Manifest, error) {
	if err := st.Ref().validate(); err != nil {
		return nil, err
	}
	if st.WorldSize < 1 {
		return nil, fmt.Errorf("%w: world size %d", ErrInvalid, st.WorldSize)
	}
	if len(st.Shards) == 0 {
		return nil, fmt.Errorf("%w: no shards", ErrInvalid)
	}
	m := &Manifest{
		FormatVersion: FormatVersion,
		Job:           st.Job,
		Step:          st.Step,
		WorldSize:     st.WorldSize,
		Created:       timeNow(opts),
		Namespace:     st.Namespace,
		Metadata:      st.Metadata,
		Tensors:       []TensorInfo{},
	}
	if opts.Key != nil {
		m.Encryption = &Encryption{Algorithm: crypt.Algorithm, KeyID: opts.Key.ID, ChunkSize: opts.ChunkSize}
	}
	perRank := map[int]int{}
	for i := range st.Shards {
		sh := &st.Shards[i]
		if sh.Name == "" {
			sh.Name = fmt.Sprintf("rank%05d-%03d", sh.Rank, perRank[sh.Rank])
		}
		perRank[sh.Rank]++
		var off int64
		for _, t := range sh.Tensors {
			m.Tensors = append(m.Tensors, TensorInfo{
				Name: t.Name, Shard: sh.Name, Offset: off, Size: int64(len(t.Data)),
				DType: t.DType, Shape: t.Shape,
			})
			off += int64(len(t.Data))
		}
		info := ShardInfo{Name: sh.Name, Rank: sh.Rank, Size: off, StoredSize: off, SHA256: zeroSHA}
		if m.Encryption != nil {
			info.StoredSize = crypt.SealedSize(off, opts.ChunkSize)
		}
		m.Shards = append(m.Shards, info)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return m, nil
}

func (o SaveOptions) withDefaults() SaveOptions {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = crypt.DefaultChunkSize
	}
	return o
}

func timeNow(opts SaveOptions) time.Time {
	if opts.Now != nil {
		return opts.Now().UTC()
	}
	return time.Now().UTC()
}

// zeroSHA is a placeholder checksum that passes validation during planning.
var zeroSHA = hex.EncodeToString(make([]byte, sha256.Size))

// Save writes the checkpoint: every shard, then the manifest. On failure it
// deletes the shards it wrote and returns the error; the checkpoint is then
// absent (it never had a manifest). It returns the manifest written.
func Save(ctx context.Context, s storage.Store, st *State, opts SaveOptions) (*Manifest, error) {
	opts = opts.withDefaults()
	m, err := plan(st, opts)
	if err != nil {
		return nil, err
	}
	ref := st.Ref()
	if err := putShards(ctx, s, ref, st, m, opts); err != nil {
		cleanup(ctx, s, ref, m)
		return nil, err
	}
	if err := Commit(ctx, s, m); err != nil {
		cleanup(ctx, s, ref, m)
		return nil, err
	}
	return m, nil
}

func putShards(ctx context.Context, s storage.Store, ref Ref, st *State, m *Manifest, opts SaveOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		sem      = make(chan struct{}, opts.Concurrency)
	)
	for i := range st.Shards {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			sum, err := putShard(ctx, s, ref, &st.Shards[i], m.Shards[i], opts)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				cancel()
				return
			}
			m.Shards[i].SHA256 = sum
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = fmt.Errorf("checkpoint %s: %w", ref, ctx.Err())
	}
	return firstErr
}

// putShard uploads one shard and returns the hex SHA-256 of what was
// stored. Plaintext is hashed in a second goroutine while the backend
// writes it, so hashing costs no time on a machine with a spare core.
func putShard(ctx context.Context, s storage.Store, ref Ref, sh *Shard, info ShardInfo, opts SaveOptions) (string, error) {
	bufs := make([][]byte, len(sh.Tensors))
	for i, t := range sh.Tensors {
		bufs[i] = t.Data
	}
	key := ref.Key(sh.Name)
	if opts.Key != nil {
		enc, err := crypt.NewEncrypter(newMultiBytes(bufs), opts.Key, opts.ChunkSize, shardAAD(ref, sh.Name))
		if err != nil {
			return "", fmt.Errorf("checkpoint %s: shard %s: %w", ref, sh.Name, err)
		}
		h := sha256.New()
		if err := s.Put(ctx, key, io.TeeReader(enc, h), info.StoredSize); err != nil {
			return "", fmt.Errorf("checkpoint %s: shard %s: %w", ref, sh.Name, err)
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	sumc := make(chan string, 1)
	go func() { sumc <- hashBufs(bufs) }()
	err := s.Put(ctx, key, newMultiBytes(bufs), info.StoredSize)
	sum := <-sumc
	if err != nil {
		return "", fmt.Errorf("checkpoint %s: shard %s: %w", ref, sh.Name, err)
	}
	return sum, nil
}

func hashBufs(bufs [][]byte) string {
	h := sha256.New()
	for _, b := range bufs {
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// shardAAD binds a sealed shard to its place, so a shard cannot be swapped
// for another checkpoint's or another shard's without failing to open.
func shardAAD(ref Ref, name string) []byte { return []byte("ark-ckpt-v1:" + ref.Key(name)) }

// Commit writes the manifest, which makes the checkpoint exist. Call it
// only once every shard it lists is stored.
func Commit(ctx context.Context, s storage.Store, m *Manifest) error {
	b, err := m.Encode()
	if err != nil {
		return err
	}
	ref := Ref{Job: m.Job, Step: m.Step}
	if err := s.Put(ctx, ref.Key(ManifestName), newMultiBytes([][]byte{b}), int64(len(b))); err != nil {
		return fmt.Errorf("checkpoint %s: manifest: %w", ref, err)
	}
	return nil
}

// cleanupTimeout bounds the best-effort deletion of a failed save's shards.
const cleanupTimeout = 30 * time.Second

// cleanup deletes the shards of a failed save on a context detached from
// ctx, which may be the cancelled reason of the failure. If the manifest
// put failed ambiguously (it may have landed), the checkpoint is left
// alone: it is either complete or absent, never half-deleted.
func cleanup(ctx context.Context, s storage.Store, ref Ref, m *Manifest) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if _, err := s.Stat(ctx, ref.Key(ManifestName)); !errors.Is(err, storage.ErrNotFound) {
		return
	}
	for _, sh := range m.Shards {
		s.Delete(ctx, ref.Key(sh.Name))
	}
}
