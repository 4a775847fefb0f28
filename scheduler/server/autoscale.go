package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/sched"
	"github.com/ark-sched/ark/scheduler/state"
)

// The leader's autoscaler: agents send their replicas' loads with their
// heartbeats (kept here, in memory, like the heartbeat timers: a new
// leader starts without them and decides nothing until they come), and
// once a second each autoscaled service's count is decided by
// sched.Autoscale and committed with its reason (state.ScaleJobRequest).
// A request to a service scaled to zero wakes it (wakeService).

// loadTable is the latest load of each replica and when it came.
type loadTable struct {
	mu    sync.Mutex
	loads map[string]timedLoad
}

type timedLoad struct {
	api.ReplicaLoad
	at time.Time
}

func (t *loadTable) put(loads []api.ReplicaLoad, now time.Time) {
	if len(loads) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.loads == nil {
		t.loads = map[string]timedLoad{}
	}
	for _, l := range loads {
		t.loads[l.AllocID] = timedLoad{l, now}
	}
}

// of returns the loads of allocs reported since after, and forgets loads
// older than that.
func (t *loadTable) of(allocs []*api.Allocation, after time.Time) []api.ReplicaLoad {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []api.ReplicaLoad
	for _, a := range allocs {
		l, ok := t.loads[a.ID]
		switch {
		case !ok:
		case l.at.Before(after):
			delete(t.loads, a.ID)
		default:
			out = append(out, l.ReplicaLoad)
		}
	}
	return out
}

// runAutoscaler decides autoscaled services' counts until ctx ends.
func (s *Server) runAutoscaler(ctx context.Context) {
	mem := map[string]*sched.ScaleMemory{}
	cfg := s.schedConfig()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now().UTC()
		// A load older than three heartbeats is of a node gone quiet.
		fresh := now.Add(-3 * s.cfg.HeartbeatTTL)
		snap := s.store.Snapshot()
		seen := map[string]bool{}
		var used map[string]int64 // GPU milli held by each queue's live allocations, when needed
		for _, j := range snap.JobsByStatus(nil, api.JobRunning) {
			if !j.Service || j.Spec.Autoscale == nil {
				continue
			}
			seen[j.ID] = true
			var ready []*api.Allocation
			for _, a := range snap.AllocsByJob(nil, j.ID) {
				if a.Serving() && a.Ready {
					ready = append(ready, a)
				}
			}
			m := mem[j.ID]
			if m == nil {
				m = &sched.ScaleMemory{}
				mem[j.ID] = m
			}
			n, why := sched.Autoscale(j, s.loads.of(ready, fresh), m, now)
			if n > j.Spec.Replicas {
				if used == nil {
					used = queueUsage(snap)
				}
				var capped string
				n, capped = sched.QuotaCap(&cfg, j, used[j.Queue], n)
				why += capped
			}
			if n == j.Spec.Replicas {
				continue
			}
			if _, _, err := s.apply(ctx, state.ScaleJobType, &state.ScaleJobRequest{JobID: j.ID, Replicas: n, Reason: why, Time: now}); err != nil && ctx.Err() == nil {
				s.log.Warn("autoscaling failed", zap.String("job", j.ID), zap.Error(err))
				continue
			}
			s.log.Info("autoscaled", zap.String("job", j.ID), zap.Int("from", j.Spec.Replicas), zap.Int("to", n), zap.String("why", why))
		}
		for id := range mem {
			if !seen[id] {
				delete(mem, id)
			}
		}
	}
}

// wakeService brings a service scaled to zero back to its minimum (at
// least one replica) for a request, and waits until a replica is ready
// or the autoscaler's wake timeout passes. It runs on the leader (the
// endpoint forwards such requests there).
func (s *Server) wakeService(ctx context.Context, j *api.Job) error {
	a := j.Spec.Autoscale
	_, _, err := s.apply(ctx, state.ScaleJobType, &state.ScaleJobRequest{JobID: j.ID, Replicas: a.Clamp(1),
		Reason: "a request arrived while it was scaled to zero", Time: time.Now().UTC()})
	if err != nil && !errors.Is(err, state.ErrConflict) {
		return err
	}
	wait := time.Duration(a.WakeTimeout)
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var index uint64
	for {
		idx, err := s.store.Blocking(wctx, index, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, error) {
			snap.WatchAll(ws)
			return snap.LatestIndex(), nil
		})
		snap := s.store.Snapshot()
		if cur := snap.Job(nil, j.ID); cur != nil {
			if targets, _ := readyReplicas(snap, cur); len(targets) > 0 {
				return nil
			}
		}
		if err != nil || wctx.Err() != nil {
			return &httpError{http.StatusServiceUnavailable, fmt.Errorf("service %s was scaled to zero and no replica became ready within %s (autoscale.wakeTimeout)", j.ID, wait)}
		}
		index = idx
	}
}

// nodeLoads keeps the loads of allocations that run on node id: a node
// speaks for its own replicas only (a node's secret must not steer
// another tenant's service).
func nodeLoads(snap *state.Snapshot, id string, loads []api.ReplicaLoad) []api.ReplicaLoad {
	out := loads[:0:0]
	for _, l := range loads {
		if a := snap.Alloc(nil, l.AllocID); a != nil && a.NodeID == id && l.Running >= 0 && l.Waiting >= 0 {
			out = append(out, l)
		}
	}
	return out
}

// queueUsage is the GPU milli each queue's live allocations hold.
func queueUsage(snap *state.Snapshot) map[string]int64 {
	out := map[string]int64{}
	queue := map[string]string{}
	for _, a := range snap.Allocs(nil) {
		if a.Terminal() {
			continue
		}
		q, ok := queue[a.JobID]
		if !ok {
			if j := snap.Job(nil, a.JobID); j != nil {
				q = j.Queue
			}
			queue[a.JobID] = q
		}
		milli := a.GPUMilli
		if milli == 0 {
			milli = int64(len(a.GPUs)) * 1000
		}
		out[q] += milli
	}
	return out
}
