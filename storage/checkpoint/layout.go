package checkpoint

import (
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/ark-sched/ark/storage/checkpoint/ckptpath"
)

// MaxStep is the largest step the 12-digit layout can hold.
const MaxStep = ckptpath.MaxStep

// Ref names a checkpoint: a job and a step.
type Ref struct {
	Job  string
	Step int64
}

func (r Ref) String() string { return r.Job + "/" + stepDir(r.Step) }

// stepDir and parseStep are the step's spelling, which ckptpath owns.
func stepDir(step int64) string { return ckptpath.StepDir(step) }

func parseStep(s string) (int64, bool) { return ckptpath.ParseStep(s) }

// Prefix returns the key prefix of the checkpoint's objects ("JOB/STEP/").
func (r Ref) Prefix() string { return r.String() + "/" }

// Key returns the key of an object (shard or manifest) of the checkpoint.
func (r Ref) Key(name string) string { return r.Prefix() + name }

func (r Ref) validate() error {
	if !ValidName(r.Job) {
		return fmt.Errorf("%w: job %q: want 1-128 of [A-Za-z0-9._-], not starting with . or -", ErrInvalid, r.Job)
	}
	if r.Step < 0 || r.Step > MaxStep {
		return fmt.Errorf("%w: step %d out of range [0, %d]", ErrInvalid, r.Step, int64(MaxStep))
	}
	return nil
}

// SplitURI splits a checkpoint URI, STORE/JOB/STEP (file:///data/ckpt/ft/50,
// s3://bucket/prefix/ft/000000000050), into the store URI and the Ref. The
// step may be written with or without leading zeros.
func SplitURI(uri string) (store string, ref Ref, err error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", Ref{}, fmt.Errorf("checkpoint URI %q: %w", uri, err)
	}
	// JoinURI appends JOB/STEP to the store, so a fragment would swallow it.
	if u.Fragment != "" {
		return "", Ref{}, fmt.Errorf("checkpoint URI %q: want STORE_URI/JOB/STEP without a #fragment", uri)
	}
	p := strings.TrimSuffix(u.Path, "/")
	stepStr := path.Base(p)
	rest := path.Dir(p)
	job := path.Base(rest)
	step, isStep := ckptpath.ParseURIStep(stepStr)
	if !isStep || u.Scheme == "" || rest == "/" || rest == "." {
		return "", Ref{}, fmt.Errorf("checkpoint URI %q: want STORE_URI/JOB/STEP", uri)
	}
	ref = Ref{Job: job, Step: step}
	if err := ref.validate(); err != nil {
		return "", Ref{}, fmt.Errorf("checkpoint URI %q: %w", uri, err)
	}
	u.Path = path.Dir(rest)
	if u.Path == "/" && u.Scheme != "file" {
		u.Path = ""
	}
	u.RawPath, u.ForceQuery = "", false
	return u.String(), ref, nil
}

// JoinURI is the inverse of SplitURI.
func JoinURI(store string, ref Ref) string { return ckptpath.Join(store, ref.Job, stepDir(ref.Step)) }
