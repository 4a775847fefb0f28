package server

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/placement"
	"github.com/ark-sched/ark/scheduler/state"
)

// runInfo computes what preemption and backfill read of each live
// allocation, at now: its job's priority, the work it loses if evicted
// (seconds since its last reported checkpoint, or since it started), when
// its job's maxRuntime runs out, and whether it runs on capacity its queue
// borrowed past its quota.
func (s *Server) runInfo(snap *state.Snapshot, live []*api.Allocation, now time.Time) map[string]placement.RunInfo {
	job := jobLookup(snap)
	out := make(map[string]placement.RunInfo, len(live))
	byQueue := map[string][]*api.Allocation{}
	for _, a := range live {
		j := job(a.JobID)
		if j == nil {
			continue
		}
		info := placement.RunInfo{Priority: j.Priority, Queue: j.Queue, EndsIn: math.Inf(1)}
		started := now
		switch {
		case a.StartTime != nil:
			started = *a.StartTime
		case j.StartTime != nil:
			started = *j.StartTime
		}
		since := started
		if c := a.LastCheckpoint; c != nil && c.Time.After(since) {
			since = c.Time
		}
		info.SinceCheckpoint = max(now.Sub(since).Seconds(), 0)
		info.Protected = now.Sub(started) < s.cfg.PreemptMinRuntime
		if j.Spec.MaxRuntime > 0 && j.StartTime != nil {
			info.EndsIn = max(j.StartTime.Add(time.Duration(j.Spec.MaxRuntime)).Sub(now).Seconds(), 0)
		}
		out[a.ID] = info
		byQueue[j.Queue] = append(byQueue[j.Queue], a)
	}
	// Past its quota, a queue's newest allocations are the borrowed ones.
	for name, allocs := range byQueue {
		q := s.queue(name)
		if q.QuotaGPUs <= 0 {
			continue
		}
		sort.Slice(allocs, func(i, k int) bool {
			ji, jk := job(allocs[i].JobID), job(allocs[k].JobID)
			if ji.CreateIndex != jk.CreateIndex {
				return ji.CreateIndex < jk.CreateIndex
			}
			return allocs[i].ID < allocs[k].ID
		})
		quota := int64(q.QuotaGPUs) * placement.MilliPerGPU
		var used int64
		for _, a := range allocs {
			used += allocGPUMilli(a)
			if used > quota {
				info := out[a.ID]
				info.Borrowed = true
				out[a.ID] = info
			}
		}
	}
	return out
}

// jobLookup finds jobs by ID in snap, each looked up once: a pass reads
// the job of every live allocation, and gangs hold several.
func jobLookup(snap *state.Snapshot) func(id string) *api.Job {
	jobs := map[string]*api.Job{}
	return func(id string) *api.Job {
		j, ok := jobs[id]
		if !ok {
			j = snap.Job(nil, id)
			jobs[id] = j
		}
		return j
	}
}

// withinQuota returns the pending jobs that fit under their queue's GPU
// quota as the queue stands: they may reclaim what other queues borrowed.
// A queue without a quota has nothing to reclaim.
func (s *Server) withinQuota(snap *state.Snapshot, pending []*api.Job, live []*api.Allocation) map[string]bool {
	used := map[string]int64{}
	job := jobLookup(snap)
	for _, a := range live {
		if j := job(a.JobID); j != nil {
			used[j.Queue] += allocGPUMilli(a)
		}
	}
	out := map[string]bool{}
	for _, j := range pending {
		q := s.queue(j.Queue)
		if q.QuotaGPUs > 0 && used[j.Queue]+j.Spec.GPUMilliTotal() <= int64(q.QuotaGPUs)*placement.MilliPerGPU {
			out[j.ID] = true
		}
	}
	return out
}

// preemptions turns the engine's evictions into the plan's.
func preemptions(res placement.Result) []state.Preemption {
	out := make([]state.Preemption, 0, len(res.Preemptions))
	for _, p := range res.Preemptions {
		out = append(out, state.Preemption{JobID: p.JobID, Victims: p.Victims, Reclaim: p.Reclaim, LostGPUSeconds: p.LostGPUSeconds})
	}
	return out
}

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
		if _, _, err := s.apply(ctx, state.CancelJobType, &state.CancelJobRequest{JobID: j.ID, Reason: reason, Time: now}); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("stopping a job past its maxRuntime failed", zap.String("job", j.ID), zap.Error(err))
			}
			continue
		}
		s.log.Info("job stopped at its maxRuntime", zap.String("job", j.ID), zap.Duration("maxRuntime", limit))
	}
}
