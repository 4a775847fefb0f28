package server

import (
	"context"
	"fmt"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/state"
)

// The janitor is the leader's loop of timed chores, apart from the
// scheduling pass (scheduler.go) and heartbeats (heartbeat.go): drains,
// maxRuntime, job GC and registering results in the model catalog. Each
// writes through Raft like any client.

// drainTick is how often the leader's janitor looks at draining nodes,
// jobs past their maxRuntime and finished jobs to forget.
const drainTick = 500 * time.Millisecond

// runJanitor runs the leader's timed chores until ctx ends. It moves work
// off draining nodes:
// jobs still running on a node when its drain deadline passes are
// restarted elsewhere (whole gangs), and a drain with nothing left on its
// node is recorded complete. The node stays ineligible afterwards. The same
// tick stops jobs past their maxRuntime and, every gcEvery, forgets jobs
// finished more than JobGCThreshold ago.
func (s *Server) runJanitor(ctx context.Context) {
	t := time.NewTicker(drainTick)
	defer t.Stop()
	var lastGC time.Time
	// Results that cannot be registered are logged once per leadership.
	unregistrable := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now().UTC()
		s.drainPass(ctx, now)
		s.runtimePass(ctx, now)
		s.outputPass(ctx, now, unregistrable)
		s.evalPass(ctx)
		if now.Sub(lastGC) >= min(gcEvery, max(s.cfg.JobGCThreshold, drainTick)) {
			s.gcPass(ctx, now)
			lastGC = now
		}
	}
}

func (s *Server) drainPass(ctx context.Context, now time.Time) {
	snap := s.store.Snapshot()
	for _, n := range snap.DrainingNodes() {
		jobs := map[string]bool{}
		live := 0
		for _, a := range snap.AllocsByNode(nil, n.ID) {
			if a.Terminal() {
				continue
			}
			live++
			if j := snap.Job(nil, a.JobID); j != nil && j.Status == api.JobRunning && a.DesiredStatus == api.DesiredRun {
				jobs[a.JobID] = true
			}
		}
		var err error
		switch {
		case live == 0:
			_, _, err = s.apply(ctx, state.NodeDrainType, &state.NodeDrainRequest{NodeID: n.ID, Complete: true})
			if err == nil {
				s.log.Info("node drained", zap.String("node", n.Name))
			}
		case len(jobs) > 0 && !now.Before(n.Drain.Deadline):
			ids := make([]string, 0, len(jobs))
			for id := range jobs {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			_, _, err = s.apply(ctx, state.MigrateJobsType, &state.MigrateJobsRequest{
				JobIDs: ids, Reason: fmt.Sprintf("moving off draining node %s", n.Name), Time: now, NodeID: n.ID, StopCause: api.AllocDrained,
			})
			if err == nil {
				s.log.Info("moving jobs off a draining node", zap.String("node", n.Name), zap.Strings("jobs", ids))
			}
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("drain step failed", zap.String("node", n.Name), zap.Error(err))
		}
	}
}

// nodeRequest decodes a node operator request's body into req and finds
// the node the path names; it answers the error itself and returns nil.
// runtimePass stops running jobs past their maxRuntime (on the leader, from
// the drainer's tick), so that a runtime backfill counted on holds.
func (s *Server) runtimePass(ctx context.Context, now time.Time) {
	snap := s.store.Snapshot()
	for _, j := range snap.JobsByStatus(nil, api.JobRunning) {
		if j.Spec.MaxRuntime <= 0 || j.StartTime == nil {
			continue
		}
		limit := time.Duration(j.Spec.MaxRuntime)
		if now.Before(j.StartTime.Add(limit)) {
			continue
		}
		reason := fmt.Sprintf("stopped: ran past its maxRuntime of %s", limit)
		if _, _, err := s.apply(ctx, state.CancelJobType, &state.CancelJobRequest{JobID: j.ID, Reason: reason, Time: now, StopCause: api.AllocCancelled}); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("stopping a job past its maxRuntime failed", zap.String("job", j.ID), zap.Error(err))
			}
			continue
		}
		s.log.Info("job stopped at its maxRuntime", zap.String("job", j.ID), zap.Duration("maxRuntime", limit))
	}
}

// DefaultJobGCThreshold is how long a finished job stays (with its
// allocations and their logs' references) before the leader forgets it.
const DefaultJobGCThreshold = 24 * time.Hour

// gcEvery is how often the leader looks for finished jobs to forget, and
// gcBatch the most it forgets in one Raft entry.
const (
	gcEvery = 30 * time.Second
	gcBatch = 512
)

// gcPass forgets jobs that finished more than JobGCThreshold before now and
// have no allocation still running, in batches; the FSM re-checks each.
func (s *Server) gcPass(ctx context.Context, now time.Time) {
	if s.cfg.JobGCThreshold <= 0 {
		return
	}
	before := now.Add(-s.cfg.JobGCThreshold)
	snap := s.store.Snapshot()
	var ids []string
	flush := func() {
		if len(ids) == 0 {
			return
		}
		resp, _, err := s.apply(ctx, state.GCJobsType, &state.GCJobsRequest{JobIDs: ids, Before: before})
		ids = ids[:0]
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("forgetting finished jobs failed", zap.Error(err))
			}
			return
		}
		if r := resp.(*state.GCJobsResponse); r.Jobs > 0 {
			s.log.Info("forgot finished jobs", zap.Int("jobs", r.Jobs), zap.Int("allocations", r.Allocs), zap.Duration("older_than", s.cfg.JobGCThreshold))
		}
	}
	for _, status := range []string{api.JobSucceeded, api.JobFailed, api.JobCancelled} {
		for _, j := range snap.JobsByStatus(nil, status) {
			if j.EndTime == nil || !j.EndTime.Before(before) {
				continue
			}
			live := false
			for _, a := range snap.AllocsByJob(nil, j.ID) {
				live = live || !a.Terminal()
			}
			if live {
				continue
			}
			if ids = append(ids, j.ID); len(ids) == gcBatch {
				flush()
			}
		}
	}
	flush()
}
