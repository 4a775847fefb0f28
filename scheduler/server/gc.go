package server

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/state"
)

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
