package checkpoint

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/ark-sched/ark/storage"
)

// Copy copies checkpoint c into store dst under the same job and step
// (`ark ckpt cp`: from a cluster's store to a laptop's disk, or from disk
// to S3). Shards are copied as stored, sealed ones still sealed, each
// checked against the manifest's size and SHA-256 as it streams; the
// manifest, the same bytes, is written last, so the copy exists only once
// it is complete. A shard that fails its check stops the copy and the
// shards already written are removed. A destination that holds the
// checkpoint already is ErrExists. progress, if set, sees the bytes
// copied of the total.
func Copy(ctx context.Context, c *Checkpoint, dst storage.Store, progress func(done, total int64)) error {
	ref := c.Ref
	if _, err := dst.Stat(ctx, ref.Key(ManifestName)); err == nil {
		return fmt.Errorf("copy %s: %w in the destination", ref, ErrExists)
	} else if !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("copy %s: %w", ref, err)
	}
	manifest, err := readManifest(ctx, c.store, ref)
	if err != nil {
		return fmt.Errorf("copy %s: %w", ref, err)
	}
	var total, done int64
	for _, sh := range c.Manifest.Shards {
		total += sh.StoredSize
	}
	for _, sh := range c.Manifest.Shards {
		rc, err := c.store.Get(ctx, ref.Key(sh.Name), 0, -1)
		if err != nil {
			return c.abortCopy(ctx, dst, fmt.Errorf("copy %s: shard %s: %w", ref, sh.Name, err))
		}
		v := &verifier{r: rc, h: sha256.New(), info: sh, ref: ref}
		err = dst.Put(ctx, ref.Key(sh.Name), progressReader{v, &done, total, progress}, sh.StoredSize)
		rc.Close()
		if err != nil {
			return c.abortCopy(ctx, dst, fmt.Errorf("copy %s: %w", ref, err))
		}
	}
	if err := dst.Put(ctx, ref.Key(ManifestName), bytes.NewReader(manifest), int64(len(manifest))); err != nil {
		return c.abortCopy(ctx, dst, fmt.Errorf("copy %s: manifest: %w", ref, err))
	}
	return nil
}

// abortCopy removes the shards a failed copy wrote (no manifest was).
func (c *Checkpoint) abortCopy(ctx context.Context, dst storage.Store, err error) error {
	for _, sh := range c.Manifest.Shards {
		_ = dst.Delete(context.WithoutCancel(ctx), c.Ref.Key(sh.Name))
	}
	return err
}
