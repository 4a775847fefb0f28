package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/storage/checkpoint"
	"github.com/ark-sched/ark/storage/stores"
	"github.com/ark-sched/ark/worker/train"
)

// A job's checkpoints as `ark job status` shows them and `ark ckpt list
// JOB` finds them: every URI in the one form storage/checkpoint/ckptpath
// writes (STORE/NAMESPACE/JOB/STEP, STEP in 12 digits), whatever form a
// task reported.

// canonicalCkptURI rewrites a checkpoint URI a task reported
// (".../ft-1/150") in the form the store writes (".../ft-1/000000000150");
// one it cannot read stays as it is.
func canonicalCkptURI(uri string) string {
	store, ref, err := checkpoint.SplitURI(uri)
	if err != nil {
		return uri
	}
	return checkpoint.JoinURI(store, ref)
}

// jobCheckpoints is where job's checkpoints are: its store and the job
// name in it (from any allocation's STORE/NAMESPACE/JOB), and the newest
// checkpoint a rank reported. ok is false when no allocation names a
// location (the job never ran).
type jobCheckpoints struct {
	Store  string             `json:"store"`
	Job    string             `json:"job"`
	Latest *api.CheckpointRef `json:"latest,omitempty"`
	Steps  []ckptStep         `json:"steps,omitempty"`
}

// ckptStep is one checkpoint in the store.
type ckptStep struct {
	Step     int64  `json:"step"`
	Complete bool   `json:"complete"`
	URI      string `json:"uri"`
}

func checkpointsOf(j *api.Job) (jobCheckpoints, bool) {
	var out jobCheckpoints
	for _, a := range j.Allocations {
		if out.Store == "" && a.CheckpointURI != "" {
			if store, name, err := train.SplitJobURI(a.CheckpointURI); err == nil {
				out.Store, out.Job = store, name
			}
		}
		if c := a.LastCheckpoint; c != nil && (out.Latest == nil || c.Step > out.Latest.Step ||
			c.Step == out.Latest.Step && c.Time.After(out.Latest.Time)) {
			cp := *c
			cp.URI = canonicalCkptURI(cp.URI)
			out.Latest = &cp
		}
	}
	return out, out.Store != "" || out.Latest != nil
}

// listSteps fills in the checkpoints the store holds, when this machine
// can read the store without credentials (a file:// store, as under ark
// dev); elsewhere `ark ckpt list` does it. It gives up quietly: the
// status must not fail over a listing.
func (c *jobCheckpoints) listSteps(ctx context.Context) {
	if !strings.HasPrefix(c.Store, "file://") {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := stores.Open(ctx, c.Store, stores.Options{})
	if err != nil {
		return
	}
	infos, err := checkpoint.List(ctx, s, c.Job)
	if err != nil {
		return
	}
	for _, in := range infos {
		c.Steps = append(c.Steps, ckptStep{Step: in.Step, Complete: in.Complete, URI: checkpoint.JoinURI(c.Store, in.Ref)})
	}
}

// printCheckpoints renders a job's checkpoints for `ark job status`: the
// newest a rank reported, then each one the store holds.
func printCheckpoints(w io.Writer, c jobCheckpoints) {
	if l := c.Latest; l != nil {
		fmt.Fprintf(w, "Checkpoint %s (step %d, %s ago)\n", l.URI, l.Step, time.Since(l.Time).Round(time.Second))
	} else {
		fmt.Fprintf(w, "Checkpoint none reported yet\n")
	}
	for _, s := range c.Steps {
		state := ""
		if !s.Complete {
			state = " (incomplete)"
		}
		fmt.Fprintf(w, "  step %-6d %s%s\n", s.Step, s.URI, state)
	}
	if c.Job != "" && len(c.Steps) == 0 {
		fmt.Fprintf(w, "           ark ckpt list %s lists every step\n", c.Job)
	}
}

// printJobCheckpoints adds a job's checkpoints to its status, for a job
// that checkpoints (or reported one).
func printJobCheckpoints(w io.Writer, j *api.Job) {
	c, ok := checkpointsOf(j)
	if !ok || (j.Spec.Checkpoint.Every <= 0 && c.Latest == nil) {
		return
	}
	if c.Store != "" {
		c.listSteps(context.Background())
	}
	printCheckpoints(w, c)
}

// clusterCheckpointStore finds where job ref (an ID, unique prefix or
// name) keeps its checkpoints by asking the servers: the store is the
// cluster's (--checkpoint-store), so `ark ckpt list JOB` needs no --store.
func clusterCheckpointStore(ctx context.Context, c *client.Client, ref string) (store, job string, err error) {
	j, err := resolveJob(ctx, c, ref)
	if err != nil {
		return "", "", err
	}
	cp, _ := checkpointsOf(j)
	if cp.Store == "" {
		return "", "", usagef("job %s has not run yet, so it has no checkpoint location; give --store to look in a store", j.ID)
	}
	return cp.Store, cp.Job, nil
}
