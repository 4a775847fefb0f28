package sched

import (
	"math"
	"sort"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/placement"
)

// runInfo computes what preemption and backfill read of each live
// allocation, at now: its job's priority, the work it loses if evicted
// (seconds since its last reported checkpoint, or since it started), when
// its job's maxRuntime runs out, and whether it runs on capacity its queue
// borrowed past its quota.
func runInfo(cfg *Config, job func(string) *api.Job, live []*api.Allocation, now time.Time) map[string]placement.RunInfo {
	out := make(map[string]placement.RunInfo, len(live))
	byQueue := map[string][]*api.Allocation{}
	for _, a := range live {
		j := job(a.JobID)
		if j == nil {
			continue
		}
		info := placement.RunInfo{Priority: j.Priority, Queue: j.Queue, EndsIn: math.Inf(1)}
		started := startedAt(a, j, now)
		since := started
		if c := a.LastCheckpoint; c != nil && c.Time.After(since) {
			since = c.Time
		}
		info.SinceCheckpoint = max(now.Sub(since).Seconds(), 0)
		info.Protected = now.Sub(started) < cfg.PreemptMinRuntime
		if j.Spec.MaxRuntime > 0 && j.StartTime != nil {
			info.EndsIn = max(j.StartTime.Add(time.Duration(j.Spec.MaxRuntime)).Sub(now).Seconds(), 0)
		}
		out[a.ID] = info
		byQueue[j.Queue] = append(byQueue[j.Queue], a)
	}
	// Past its quota, a queue's newest allocations are the borrowed ones.
	for name, allocs := range byQueue {
		q := cfg.Queue(name)
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
			used += AllocGPUMilli(a)
			if used > quota {
				info := out[a.ID]
				info.Borrowed = true
				out[a.ID] = info
			}
		}
	}
	return out
}

// startedAt is when a runs from, for its protection and the work it
// loses: its own start, its job's (placed, not yet reported running), or
// now.
func startedAt(a *api.Allocation, j *api.Job, now time.Time) time.Time {
	switch {
	case a.StartTime != nil:
		return *a.StartTime
	case j.StartTime != nil:
		return *j.StartTime
	}
	return now
}

// protectionEnds is the first time after now that a live allocation's
// PreemptMinRuntime runs out, rounded up to the second (so that the ends
// of a burst of starts wake one pass), or zero when none does. No write
// says so: a job that waits for work to preempt wakes the pass then.
func protectionEnds(cfg *Config, job func(string) *api.Job, live []*api.Allocation, now time.Time) time.Time {
	if cfg.PreemptMinRuntime <= 0 {
		return time.Time{}
	}
	var first time.Time
	for _, a := range live {
		j := job(a.JobID)
		if j == nil {
			continue
		}
		end := startedAt(a, j, now).Add(cfg.PreemptMinRuntime)
		if end.After(now) && (first.IsZero() || end.Before(first)) {
			first = end
		}
	}
	if first.IsZero() {
		return first
	}
	if r := first.Truncate(time.Second); !r.Equal(first) {
		first = r.Add(time.Second)
	}
	return first
}

// withinQuota returns the pending jobs that fit under their queue's GPU
// quota as the queue stands: they may reclaim what other queues borrowed.
// A queue without a quota has nothing to reclaim.
func withinQuota(cfg *Config, job func(string) *api.Job, pending []*api.Job, live []*api.Allocation) map[string]bool {
	used := map[string]int64{}
	for _, a := range live {
		if j := job(a.JobID); j != nil {
			used[j.Queue] += AllocGPUMilli(a)
		}
	}
	out := map[string]bool{}
	for _, j := range pending {
		q := cfg.Queue(j.Queue)
		if q.QuotaGPUs > 0 && used[j.Queue]+j.Spec.GPUMilliTotal() <= int64(q.QuotaGPUs)*placement.MilliPerGPU {
			out[j.ID] = true
		}
	}
	return out
}
