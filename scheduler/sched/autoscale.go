package sched

import (
	"fmt"
	"math"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/placement"
)

// Autoscaling (spec.Autoscale): the leader reads the loads its agents
// send with their heartbeats and, once a second, asks Autoscale what each
// autoscaled service's replica count should be. The decision is
// Kubernetes' HPA rule: as many replicas as carry the load at the target
// (queue depth: requests running or waiting, summed, over the target per
// replica; TTFT: the count times the p90 over the target), within a 10%
// tolerance, between min (at least 1) and max, held for scaleOutAfter
// before scaling out and scaleInAfter before scaling in. A service with
// min 0 goes to zero once its replicas have had no request for
// idleToZero; it comes back when a request arrives (the endpoint wakes
// it). The decision's reason is committed with it (api.ScaleEvent).

// ScaleMemory is what the autoscaler remembers of one service between
// decisions; its zero value is a service just seen.
type ScaleMemory struct {
	over, under, idle time.Time // since when the load is above, below the target, or idle
	requests          int64     // the replicas' answered requests at the last look
}

// autoscaleTolerance is the relative distance from the target within
// which the count stays (HPA's default).
const autoscaleTolerance = 0.1

// Autoscale returns the replica count service j should have given its
// ready replicas' loads, and why when it differs from the current one.
func Autoscale(j *api.Job, loads []api.ReplicaLoad, m *ScaleMemory, now time.Time) (int, string) {
	a := j.Spec.Autoscale
	cur := j.Spec.Replicas
	if a == nil || cur == 0 || len(loads) == 0 {
		// At zero only a request wakes it; without loads there is no
		// evidence either way.
		*m = ScaleMemory{}
		return cur, ""
	}
	total, requests := 0, int64(0)
	var ttft float64
	nttft := 0
	for _, l := range loads {
		total += l.Running + l.Waiting
		requests += l.Requests
		if l.TTFTP90Ms > 0 {
			ttft += l.TTFTP90Ms
			nttft++
		}
	}
	if total == 0 && requests == m.requests {
		if m.idle.IsZero() {
			m.idle = now
		}
	} else {
		m.idle = time.Time{}
	}
	m.requests = requests
	if a.Min == 0 && !m.idle.IsZero() && now.Sub(m.idle) >= time.Duration(a.IdleToZero) {
		*m = ScaleMemory{}
		return 0, fmt.Sprintf("no request for %s", time.Duration(a.IdleToZero))
	}

	desired, what := cur, ""
	switch {
	case a.Target.QueueDepth > 0:
		per := float64(total) / float64(len(loads))
		what = fmt.Sprintf("queue depth %.1f per replica against the target %g", per, a.Target.QueueDepth)
		if ratio := per / a.Target.QueueDepth; math.Abs(ratio-1) > autoscaleTolerance {
			desired = int(math.Ceil(float64(total) / a.Target.QueueDepth))
		}
	case nttft > 0:
		p90 := ttft / float64(nttft)
		what = fmt.Sprintf("TTFT p90 %.0fms against the target %gms", p90, a.Target.TTFTMsP90)
		if ratio := p90 / a.Target.TTFTMsP90; math.Abs(ratio-1) > autoscaleTolerance {
			desired = int(math.Ceil(float64(cur) * ratio))
		}
	}
	desired = min(max(desired, a.Min, 1), a.Max)
	switch {
	case desired > cur:
		m.under = time.Time{}
		if m.over.IsZero() {
			m.over = now
		}
		if held := now.Sub(m.over); held >= time.Duration(a.ScaleOutAfter) {
			m.over = time.Time{}
			return desired, fmt.Sprintf("%s for %s", what, held.Round(time.Second))
		}
	case desired < cur:
		m.over = time.Time{}
		if m.under.IsZero() {
			m.under = now
		}
		if held := now.Sub(m.under); held >= time.Duration(a.ScaleInAfter) {
			m.under = time.Time{}
			return desired, fmt.Sprintf("%s for %s", what, held.Round(time.Second))
		}
	default:
		m.over, m.under = time.Time{}, time.Time{}
	}
	return cur, ""
}

// QuotaCap bounds an autoscaled count n of service j by its queue's
// quota when the queue may not borrow: the replicas it adds must fit in
// what the queue's other work leaves of the quota (usedMilli: the GPU
// milli the queue's live allocations hold, j's included). A queue
// without a quota, or one that borrows idle GPUs, does not bound it.
func QuotaCap(cfg *Config, j *api.Job, usedMilli int64, n int) (int, string) {
	q, ok := cfg.Queues[j.Queue]
	cur := j.Spec.Replicas
	per := j.Spec.GPUMilliTotal() / int64(max(cur, 1))
	if cur == 0 {
		s := j.Spec
		s.Replicas = 1
		per = s.GPUMilliTotal()
	}
	if !ok || q.QuotaGPUs <= 0 || q.Borrow || n <= cur || per <= 0 {
		return n, ""
	}
	free := int64(q.QuotaGPUs)*placement.MilliPerGPU - usedMilli
	fit := cur + int(max(free, 0)/per)
	if n <= fit {
		return n, ""
	}
	return max(fit, cur), fmt.Sprintf("; capped at %d by queue %s's quota of %d GPUs", max(fit, cur), j.Queue, q.QuotaGPUs)
}
