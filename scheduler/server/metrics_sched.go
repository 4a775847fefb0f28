package server

import (
	"sync"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/scheduler/state"
)

// The scheduling loop's events (runScheduler calls these): how long a pass
// took, and what a committed plan placed and evicted.

// observePass records one pass's planning time.
func (m *serverMetrics) observePass(full bool, d time.Duration) {
	kind := "incremental"
	if full {
		kind = "full"
	}
	m.passDuration.WithLabelValues(kind).Observe(d.Seconds())
}

// observePlan records a committed plan: each placed job's wait (from snap,
// the state the plan was made on) and each eviction. rejected counts the
// placements dropped before or at the commit.
func (m *serverMetrics) observePlan(snap *state.Snapshot, plan state.Plan, r *state.ApplyPlanResponse, rejected int, now time.Time) {
	m.plansRejected.Add(float64(rejected + len(r.Rejected)))
	for _, id := range r.Placed {
		j := snap.Job(nil, id)
		if j == nil || j.Status != api.JobPending {
			continue // a running service's replacement replica is no admission
		}
		queue := m.queues.label(j.Queue)
		m.admitted.WithLabelValues(queue).Inc()
		if since, ok := waitingSince(snap, j); ok && now.After(since) {
			m.admissionWait.WithLabelValues(queue).Observe(now.Sub(since).Seconds())
		}
	}
	for _, p := range plan.Preemptions {
		victims, ok := r.Preempted[p.JobID]
		if !ok {
			continue // rejected at the commit
		}
		reason := preemptPriority
		if p.Reclaim {
			reason = preemptReclaim
		}
		m.preemptions.WithLabelValues(reason).Add(float64(len(victims)))
	}
}

// waitingSince is when a job last joined the queue: its submission, or for
// a restarted job the end of its previous run (its allocations' last
// finish). A restart whose end was never recorded is not measured.
func waitingSince(snap *state.Snapshot, j *api.Job) (time.Time, bool) {
	if j.RestartCount == 0 {
		return j.SubmitTime, true
	}
	var last time.Time
	for _, a := range snap.AllocsByJob(nil, j.ID) {
		if a.FinishTime != nil && a.FinishTime.After(last) {
			last = *a.FinishTime
		}
	}
	return last, !last.IsZero()
}

// maxQueueLabels bounds the queue names metrics carry: a job may name any
// queue, and a tenant must not grow the servers' series without bound.
const maxQueueLabels = 64

// otherQueue is the label of every queue past the bound.
const otherQueue = "_other"

// queueLabels maps queue names to label values: the configured queues and
// the default queue always by name, others by name while fewer than
// maxQueueLabels have been seen, the rest as otherQueue. A name once given
// keeps it, so a series never changes label.
type queueLabels struct {
	mu    sync.Mutex
	known map[string]bool
	extra int
}

func newQueueLabels(configured []string) *queueLabels {
	q := &queueLabels{known: map[string]bool{spec.DefaultQueue: true}}
	for _, name := range configured {
		q.known[name] = true
	}
	return q
}

func (q *queueLabels) label(name string) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.known[name] {
		return name
	}
	if q.extra >= maxQueueLabels {
		return otherQueue
	}
	q.extra++
	q.known[name] = true
	return name
}
