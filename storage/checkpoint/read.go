package checkpoint

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/ark-sched/ark/storage"
	"github.com/ark-sched/ark/storage/crypt"
)

// Keys finds the key a manifest names; *crypt.Keyring implements it.
type Keys interface {
	ByID(id string) (*crypt.Key, error)
}

// Checkpoint is a complete checkpoint opened for reading.
type Checkpoint struct {
	Ref      Ref
	Manifest *Manifest
	store    storage.Store
	keys     Keys
}

// Open reads and validates the checkpoint's manifest. A checkpoint without
// a manifest is ErrNotFound; one whose manifest does not validate is
// ErrInvalidManifest. keys may be nil when shards are not encrypted (or
// only Verify is needed).
func Open(ctx context.Context, s storage.Store, ref Ref, keys Keys) (*Checkpoint, error) {
	if err := ref.validate(); err != nil {
		return nil, err
	}
	b, err := readManifest(ctx, s, ref)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("checkpoint %s: %w", ref, ErrNotFound)
		}
		return nil, fmt.Errorf("checkpoint %s: %w", ref, err)
	}
	m, err := DecodeManifest(b)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", ref, err)
	}
	if m.Job != ref.Job || m.Step != ref.Step {
		return nil, fmt.Errorf("checkpoint %s: %w: manifest names %s/%d", ref, ErrInvalidManifest, m.Job, m.Step)
	}
	return &Checkpoint{Ref: ref, Manifest: m, store: s, keys: keys}, nil
}

// readManifest reads the manifest object, refusing one larger than a
// manifest can be before reading it all.
func readManifest(ctx context.Context, s storage.Store, ref Ref) ([]byte, error) {
	rc, err := s.Get(ctx, ref.Key(ManifestName), 0, maxManifestSize+1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	return b, nil
}

// OpenShard returns a reader of the shard's data (decrypted when sealed).
// The reader checks the stored bytes against the manifest's size and
// SHA-256 as they stream and fails at the end, naming the shard, if they
// differ: only a read that reaches io.EOF has been verified.
func (c *Checkpoint) OpenShard(ctx context.Context, name string) (io.ReadCloser, error) {
	info, ok := c.Manifest.Shard(name)
	if !ok {
		return nil, fmt.Errorf("checkpoint %s: no shard %q", c.Ref, name)
	}
	var key *crypt.Key
	if e := c.Manifest.Encryption; e != nil {
		if c.keys == nil {
			return nil, fmt.Errorf("checkpoint %s: shard %s is encrypted with key %s: %w", c.Ref, name, e.KeyID, crypt.ErrNoKey)
		}
		k, err := c.keys.ByID(e.KeyID)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: shard %s: %w", c.Ref, name, err)
		}
		key = k
	}
	rc, err := c.store.Get(ctx, c.Ref.Key(name), 0, -1)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("checkpoint %s: shard %s: %w: missing", c.Ref, name, ErrCorruptShard)
		}
		return nil, fmt.Errorf("checkpoint %s: shard %s: %w", c.Ref, name, err)
	}
	v := &verifier{r: rc, h: sha256.New(), info: info, ref: c.Ref}
	if key == nil {
		return v, nil
	}
	dec := crypt.NewDecrypter(v, key, shardAAD(c.Ref, name))
	return &decryptReader{dec: dec, v: v}, nil
}

// verifier hashes and counts what it reads and, at EOF, compares both with
// the manifest.
type verifier struct {
	r    io.ReadCloser
	h    hash.Hash
	n    int64
	info ShardInfo
	ref  Ref
	err  error
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.info.StoredSize {
		v.err = v.corrupt("longer than the %d bytes in the manifest", v.info.StoredSize)
		return 0, v.err
	}
	if err == io.EOF {
		if v.n != v.info.StoredSize {
			v.err = v.corrupt("%d bytes, manifest says %d", v.n, v.info.StoredSize)
			return n, v.err
		}
		if sum := hex.EncodeToString(v.h.Sum(nil)); sum != v.info.SHA256 {
			v.err = v.corrupt("sha256 %s, manifest says %s", sum, v.info.SHA256)
			return n, v.err
		}
	} else if err != nil {
		err = fmt.Errorf("checkpoint %s: shard %s: %w", v.ref, v.info.Name, err)
	}
	return n, err
}

func (v *verifier) corrupt(format string, args ...any) error {
	return fmt.Errorf("checkpoint %s: shard %s: %w: %s", v.ref, v.info.Name, ErrCorruptShard, fmt.Sprintf(format, args...))
}

func (v *verifier) Close() error { return v.r.Close() }

type decryptReader struct {
	dec *crypt.Decrypter
	v   *verifier
}

func (d *decryptReader) Read(p []byte) (int, error) {
	n, err := d.dec.Read(p)
	if errors.Is(err, crypt.ErrAuth) {
		// A tampered sealed shard fails GCM before its checksum is reached.
		err = fmt.Errorf("checkpoint %s: shard %s: %w: %w", d.v.ref, d.v.info.Name, ErrCorruptShard, err)
	}
	return n, err
}

func (d *decryptReader) Close() error { return d.v.Close() }

// ReadShard reads and verifies a whole shard.
func (c *Checkpoint) ReadShard(ctx context.Context, name string) ([]byte, error) {
	info, ok := c.Manifest.Shard(name)
	if !ok {
		return nil, fmt.Errorf("checkpoint %s: no shard %q", c.Ref, name)
	}
	rc, err := c.OpenShard(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, 0, info.Size+1)
	for {
		n, err := rc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
	}
}

// Load reads and verifies every shard and returns the checkpoint as the
// State the trainer saved (tensors share their shard's buffer).
func (c *Checkpoint) Load(ctx context.Context) (*State, error) {
	m := c.Manifest
	st := &State{Job: m.Job, Step: m.Step, WorldSize: m.WorldSize, Namespace: m.Namespace, Metadata: m.Metadata}
	index := map[string]int{}
	for _, sh := range m.Shards {
		data, err := c.ReadShard(ctx, sh.Name)
		if err != nil {
			return nil, err
		}
		index[sh.Name] = len(st.Shards)
		st.Shards = append(st.Shards, Shard{Name: sh.Name, Rank: sh.Rank, Tensors: []Tensor{{Data: data}}})
	}
	// Replace each shard's placeholder with its tensors, in manifest order.
	tensors := make([][]Tensor, len(st.Shards))
	for _, t := range m.Tensors {
		i := index[t.Shard]
		data := st.Shards[i].Tensors[0].Data
		tensors[i] = append(tensors[i], Tensor{Name: t.Name, DType: t.DType, Shape: t.Shape, Data: data[t.Offset : t.Offset+t.Size : t.Offset+t.Size]})
	}
	for i := range st.Shards {
		st.Shards[i].Tensors = tensors[i]
	}
	return st, nil
}

// ShardResult is the outcome of verifying one shard.
type ShardResult struct {
	Name  string
	Bytes int64
	Err   error
}

// Verify reads every shard's stored bytes and checks their sizes and
// SHA-256 against the manifest. It needs no key: checksums cover the
// stored (sealed) bytes. It returns one result per shard and an error
// joining the failures, each naming its shard. progress, if not nil, is
// called with the bytes read so far.
func (c *Checkpoint) Verify(ctx context.Context, progress func(done, total int64)) ([]ShardResult, error) {
	var total, done int64
	for _, sh := range c.Manifest.Shards {
		total += sh.StoredSize
	}
	var results []ShardResult
	var errs []error
	for _, sh := range c.Manifest.Shards {
		res := ShardResult{Name: sh.Name}
		rc, err := c.store.Get(ctx, c.Ref.Key(sh.Name), 0, -1)
		if err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				err = fmt.Errorf("checkpoint %s: shard %s: %w: missing", c.Ref, sh.Name, ErrCorruptShard)
			}
		} else {
			v := &verifier{r: rc, h: sha256.New(), info: sh, ref: c.Ref}
			res.Bytes, err = io.Copy(io.Discard, progressReader{v, &done, total, progress})
			rc.Close()
		}
		res.Err = err
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
		results = append(results, res)
	}
	return results, errors.Join(errs...)
}

type progressReader struct {
	r     io.Reader
	done  *int64
	total int64
	fn    func(done, total int64)
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	*p.done += int64(n)
	if p.fn != nil {
		p.fn(*p.done, p.total)
	}
	return n, err
}
