package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// After `ark job adapter add` commits, each running replica loads the
// adapter in the background and only then learns whether it is one of
// its base (the checkpoint's manifest records the base's checksum). The
// command waits for that verdict, as a vLLM or LoRAX user gets it from
// the load call: it polls GET /v1/jobs/ID/adapters?name=NAME (the servers
// ask every serving replica) until each has the adapter loaded or failed.
// An adapter that failed anywhere is removed again (a second update)
// unless --keep, and the command exits 1 with each replica's error.

// adapterPoll is how often the wait asks for the replicas' states.
const adapterPoll = 500 * time.Millisecond

// replicaVerdict is one replica's state of the added adapter.
type replicaVerdict struct {
	Rank  int    `json:"rank"`
	Alloc string `json:"alloc"`
	Node  string `json:"node,omitempty"`
	// State is loaded, failed, loading, pending (not told yet) or
	// unknown (the replica did not answer; Error says why).
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

// adapterAddResult is what `ark job adapter add -o json` prints.
type adapterAddResult struct {
	*api.ServiceAdapterAnswer
	Replicas []replicaVerdict `json:"replicas"`
	Loaded   int              `json:"loaded"`
	Failed   int              `json:"failed"`
	TimedOut bool             `json:"timedOut,omitempty"`
	// Removed is the update that took the failed adapter out again;
	// RemoveError says why that update failed.
	Removed     *api.ServiceAdapterAnswer `json:"removed,omitempty"`
	RemoveError string                    `json:"removeError,omitempty"`
}

const (
	verdictLoaded  = "loaded"
	verdictFailed  = "failed"
	verdictUnknown = "unknown"
)

// verdicts reads each replica's state of adapter name at uri from st. A
// row of another checkpoint is the adapter's old entry on a replica not
// told of the new version yet: pending.
func verdicts(st *api.ServiceAdapterStates, name, uri string) []replicaVerdict {
	out := make([]replicaVerdict, 0, len(st.Replicas))
	for _, r := range st.Replicas {
		v := replicaVerdict{Rank: r.Rank, Alloc: r.Alloc, Node: r.Node, State: api.AdapterPending}
		i := slices.IndexFunc(r.Adapters, func(a api.ReplicaAdapter) bool { return a.Name == name })
		switch {
		case r.Error != "":
			v.State, v.Error = verdictUnknown, r.Error
		case i < 0 || r.Adapters[i].URI != uri:
		case r.Adapters[i].Loaded():
			v.State = verdictLoaded
		case r.Adapters[i].Tier == api.AdapterFailed:
			v.State, v.Error = verdictFailed, r.Adapters[i].Error
		default:
			v.State = r.Adapters[i].Tier
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b replicaVerdict) int { return a.Rank - b.Rank })
	return out
}

// settled reports whether every replica has its verdict.
func settled(vs []replicaVerdict) bool {
	for _, v := range vs {
		if v.State != verdictLoaded && v.State != verdictFailed {
			return false
		}
	}
	return true
}

// waitAdapter polls the replicas' states of ans's adapter until all have
// loaded it or failed, or until timeout; timedOut says which. An answer
// that says the job cannot be asked (gone, not permitted) ends it.
func waitAdapter(ctx context.Context, c *client.Client, job string, ans *api.ServiceAdapterAnswer, timeout time.Duration) (vs []replicaVerdict, timedOut bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(adapterPoll)
	defer t.Stop()
	var lastErr error
	for {
		st, err := c.ServiceAdapterStates(ctx, job, ans.Name)
		var apiErr *client.APIError
		switch {
		case err == nil:
			vs = verdicts(st, ans.Name, ans.URI)
			if settled(vs) {
				return vs, false, nil
			}
		case errors.As(err, &apiErr) && apiErr.StatusCode != http.StatusTooManyRequests && apiErr.StatusCode < 500:
			return nil, false, fmt.Errorf("ask the replicas of %s for adapter %s: %w", job, ans.Name, err)
		default:
			lastErr = err // a server restarting or overloaded: ask again
		}
		select {
		case <-ctx.Done():
			if cerr := context.Cause(ctx); !errors.Is(cerr, context.DeadlineExceeded) {
				return vs, false, cerr // interrupted
			}
			if vs == nil {
				// Not one answer: nothing is known of the replicas.
				return nil, true, fmt.Errorf("no answer on the replicas of %s within --timeout %s (%v); adapter %s stays in the spec (ark job adapter rm %s %s removes it)",
					job, timeout, lastErr, ans.Name, job, ans.Name)
			}
			return vs, true, nil
		case <-t.C:
		}
	}
}

// countState is how many of vs are in state.
func countState(vs []replicaVerdict, state string) int {
	n := 0
	for _, v := range vs {
		if v.State == state {
			n++
		}
	}
	return n
}

// reportAdapter prints the wait's outcome for a person.
func reportAdapter(w io.Writer, job string, res *adapterAddResult, timeout time.Duration, keep bool) {
	n := len(res.Replicas)
	switch {
	case n == 0:
		fmt.Fprintf(w, "adapter %s: no replica of %s is running to load it; replicas load it when they start\n", res.Name, job)
		return
	case res.Failed == 0 && !res.TimedOut:
		fmt.Fprintf(w, "adapter %s: loaded on %d/%d replicas\n", res.Name, res.Loaded, n)
		return
	case res.Failed > 0:
		fmt.Fprintf(w, "adapter %s: failed on %d/%d replicas (loaded on %d):\n", res.Name, res.Failed, n, res.Loaded)
	case res.Rollout:
		// The old replicas never take it: the rollout replaces them.
		fmt.Fprintf(w, "adapter %s: loaded on %d/%d replicas after %s; the rollout has not ended (ark job status %s follows it):\n", res.Name, res.Loaded, n, timeout, job)
	default:
		fmt.Fprintf(w, "adapter %s: loaded on %d/%d replicas after %s; the others have not answered:\n", res.Name, res.Loaded, n, timeout)
	}
	for _, v := range res.Replicas {
		if v.State == verdictLoaded {
			continue
		}
		where := v.Alloc
		if v.Node != "" {
			where += " on " + v.Node
		}
		line := fmt.Sprintf("  replica %d (%s): %s", v.Rank, where, v.State)
		if v.Error != "" {
			line += ": " + strings.TrimSpace(v.Error)
		}
		fmt.Fprintln(w, line)
	}
	switch {
	case res.Removed != nil:
		fmt.Fprintf(w, "adapter %s removed again: version %d\n", res.Name, res.Removed.Version)
	case res.RemoveError != "":
		fmt.Fprintf(w, "adapter %s could not be removed again (%s): ark job adapter rm %s %s removes it\n", res.Name, res.RemoveError, job, res.Name)
	case res.Failed > 0 && keep:
		fmt.Fprintf(w, "adapter %s kept in the spec (--keep): ark job adapter rm %s %s removes it\n", res.Name, job, res.Name)
	case res.Failed > 0:
		fmt.Fprintf(w, "adapter %s was in the spec before this add: left there (ark job adapter rm %s %s removes it)\n", res.Name, job, res.Name)
	default:
		fmt.Fprintf(w, "adapter %s stays in the spec; ark job adapter rm %s %s removes it\n", res.Name, job, res.Name)
	}
}
