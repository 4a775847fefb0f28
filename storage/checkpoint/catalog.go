package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ark-sched/ark/storage"
)

// Info summarises a checkpoint directory found in the store.
type Info struct {
	Ref
	// Complete: the manifest object exists (List does not read it; Latest
	// and Open also validate it).
	Complete bool
	Objects  int
	Bytes    int64 // stored bytes, manifest included
	Modified time.Time
}

// List returns the checkpoints of a job, complete or not, by step.
func List(ctx context.Context, s storage.Store, job string) ([]Info, error) {
	if !ValidName(job) {
		return nil, fmt.Errorf("%w: job %q", ErrInvalid, job)
	}
	objs, err := s.List(ctx, job+"/")
	if err != nil {
		return nil, fmt.Errorf("list checkpoints of %s: %w", job, err)
	}
	var out []Info
	for _, o := range objs {
		stepStr, name, ok := strings.Cut(strings.TrimPrefix(o.Key, job+"/"), "/")
		step, okStep := parseStep(stepStr)
		if !ok || !okStep || strings.Contains(name, "/") {
			continue // not ours
		}
		if len(out) == 0 || out[len(out)-1].Step != step {
			out = append(out, Info{Ref: Ref{Job: job, Step: step}})
		}
		in := &out[len(out)-1]
		in.Objects++
		in.Bytes += o.Size
		if o.ModTime.After(in.Modified) {
			in.Modified = o.ModTime
		}
		if name == ManifestName {
			in.Complete = true
		}
	}
	return out, nil
}

// Latest opens the newest complete checkpoint of a job: the highest step
// whose manifest exists and validates (a checkpoint with a corrupt manifest
// does not exist). It returns ErrNotFound when there is none.
func Latest(ctx context.Context, s storage.Store, job string, keys Keys) (*Checkpoint, error) {
	infos, err := List(ctx, s, job)
	if err != nil {
		return nil, err
	}
	for _, in := range slices.Backward(infos) {
		if !in.Complete {
			continue
		}
		c, err := Open(ctx, s, in.Ref, keys)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalidManifest) {
			continue
		}
		return c, err
	}
	return nil, fmt.Errorf("job %s: %w", job, ErrNotFound)
}

// Delete removes a checkpoint: the manifest first, so it stops existing
// at once, then the rest of its objects.
func Delete(ctx context.Context, s storage.Store, ref Ref) error {
	if err := ref.validate(); err != nil {
		return err
	}
	if err := s.Delete(ctx, ref.Key(ManifestName)); err != nil {
		return fmt.Errorf("delete checkpoint %s: %w", ref, err)
	}
	objs, err := s.List(ctx, ref.Prefix())
	if err != nil {
		return fmt.Errorf("delete checkpoint %s: %w", ref, err)
	}
	for _, o := range objs {
		if err := s.Delete(ctx, o.Key); err != nil {
			return fmt.Errorf("delete checkpoint %s: %w", ref, err)
		}
	}
	return nil
}

// Retain keeps the newest keep complete checkpoints of a job and deletes
// the older ones, together with incomplete leftovers (failed or crashed
// saves) older than the newest complete checkpoint. Incomplete checkpoints
// newer than that may still be being written and are left alone. Since
// only complete checkpoints count, an older one is deleted only once
// newer ones are complete. Unfinished uploads under the job older than
// SweepAge are swept too (see storage.IncompleteSweeper). It returns the
// checkpoints it deleted.
func Retain(ctx context.Context, s storage.Store, job string, keep int) ([]Ref, error) {
	if keep < 1 {
		return nil, fmt.Errorf("%w: keep %d: must be >= 1", ErrInvalid, keep)
	}
	infos, err := List(ctx, s, job)
	if err != nil {
		return nil, err
	}
	var complete []Info
	for _, in := range infos {
		if in.Complete {
			complete = append(complete, in)
		}
	}
	if len(complete) == 0 {
		return nil, nil
	}
	newest := complete[len(complete)-1].Step
	var kept int
	keepSet := map[int64]bool{}
	for _, in := range slices.Backward(complete) {
		if kept == keep {
			break
		}
		keepSet[in.Step] = true
		kept++
	}
	var deleted []Ref
	for _, in := range infos {
		if keepSet[in.Step] || (!in.Complete && in.Step > newest) {
			continue
		}
		if err := Delete(ctx, s, in.Ref); err != nil {
			return deleted, err
		}
		deleted = append(deleted, in.Ref)
	}
	if sw, ok := s.(storage.IncompleteSweeper); ok {
		if err := sw.SweepIncomplete(ctx, job+"/", SweepAge); err != nil {
			return deleted, fmt.Errorf("retain %s: %w", job, err)
		}
	}
	return deleted, nil
}

// SweepAge is how old an unfinished upload must be before Retain removes
// it as abandoned: far longer than any checkpoint upload takes.
const SweepAge = time.Hour
