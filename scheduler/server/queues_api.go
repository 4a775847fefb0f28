package server

import (
	"net/http"
	"sort"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/placement"
	"github.com/ark-sched/ark/scheduler/sched"
	"github.com/ark-sched/ark/scheduler/state"
)

// GET /v1/queues: each queue's configuration (queuesfile.go) and what its
// jobs hold and wait for. Fair order, quotas and borrowing themselves are
// the leader's pass (scheduler/sched, scheduler/placement/queues.go).

func (s *Server) queue(name string) placement.Queue {
	cfg := s.schedConfig()
	return cfg.Queue(name)
}

// QueueStatus is a queue as GET /v1/queues shows it.
type QueueStatus struct {
	QueueConfig
	// UsedGPUs counts a share of a GPU as its fraction (1.5).
	UsedGPUs float64 `json:"usedGPUs"`
	// BorrowedGPUs is what the queue uses past its quota: idle capacity
	// other queues may reclaim by preemption.
	BorrowedGPUs float64 `json:"borrowedGPUs"`
	RunningJobs  int     `json:"runningJobs"`
	PendingJobs  int     `json:"pendingJobs"`
	usedMilli    int64
}

func (s *Server) handleQueues(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r.Context())
	writeJSON(w, http.StatusOK, s.queueStatuses(s.store.Snapshot(), p.canNamespace))
}

// queueStatuses is every configured queue and every queue a job names, as
// seen counting only the jobs of the namespaces visible allows (the API
// and the metrics share this arithmetic).
func (s *Server) queueStatuses(snap *state.Snapshot, visible func(namespace string) bool) []*QueueStatus {
	st := map[string]*QueueStatus{}
	get := func(name string) *QueueStatus {
		if q, ok := st[name]; ok {
			return q
		}
		q := s.queue(name)
		st[name] = &QueueStatus{QueueConfig: QueueConfig{Name: name, QuotaGPUs: q.QuotaGPUs, Weight: q.Weight, Borrow: q.Borrow}}
		return st[name]
	}
	for name := range s.cfg.Queues {
		get(name)
	}
	for _, j := range snap.Jobs(nil) {
		if !visible(j.Namespace) {
			continue
		}
		q := get(j.Queue)
		switch j.Status {
		case api.JobPending:
			q.PendingJobs++
		case api.JobRunning:
			q.RunningJobs++
			for _, a := range snap.AllocsByJob(nil, j.ID) {
				if !a.Terminal() {
					q.usedMilli += sched.AllocGPUMilli(a)
				}
			}
		}
	}
	out := make([]*QueueStatus, 0, len(st))
	for _, q := range st {
		q.UsedGPUs = float64(q.usedMilli) / placement.MilliPerGPU
		if quota := int64(q.QuotaGPUs) * placement.MilliPerGPU; q.QuotaGPUs > 0 && q.usedMilli > quota {
			q.BorrowedGPUs = float64(q.usedMilli-quota) / placement.MilliPerGPU
		}
		out = append(out, q)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Name < out[k].Name })
	return out
}
