package server

import (
	"fmt"
	"net/http"
	"os"
	"sort"

	"sigs.k8s.io/yaml"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/placement"
	"github.com/ark-sched/ark/scheduler/sched"
)

// Queues are read from a file given to every server (--queues-file):
//
//	- {name: research, quotaGPUs: 64, weight: 2, borrow: true}
//	- {name: prod, quotaGPUs: 128, weight: 1}
//
// A job names its queue in spec.queue; a queue the file does not list has
// weight 1 and no quota. Each pass, pending jobs are ordered by dominant
// resource fairness across queues (weights applied; priority then age
// within a queue), and a job that would take its queue past its GPU quota
// waits, unless the queue may borrow GPUs that no other queue's quota
// needs.

// QueueConfig is one queue in the queues file.
type QueueConfig struct {
	Name      string  `json:"name"`
	QuotaGPUs int     `json:"quotaGPUs,omitempty"`
	Weight    float64 `json:"weight,omitempty"`
	Borrow    bool    `json:"borrow,omitempty"`
}

// LoadQueues reads a queues file.
func LoadQueues(path string) (map[string]placement.Queue, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("queues file: %w", err)
	}
	var list []QueueConfig
	if err := yaml.UnmarshalStrict(data, &list); err != nil {
		return nil, fmt.Errorf("queues file %s: %w", path, err)
	}
	out := map[string]placement.Queue{}
	for i, q := range list {
		switch {
		case q.Name == "":
			return nil, fmt.Errorf("queues file %s: queue %d has no name", path, i)
		case q.QuotaGPUs < 0 || q.Weight < 0:
			return nil, fmt.Errorf("queues file %s: queue %s: quotaGPUs and weight must not be negative", path, q.Name)
		case out[q.Name].Name != "":
			return nil, fmt.Errorf("queues file %s: queue %s is listed twice", path, q.Name)
		}
		if q.Weight == 0 {
			q.Weight = 1
		}
		out[q.Name] = placement.Queue{Name: q.Name, QuotaGPUs: q.QuotaGPUs, Weight: q.Weight, Borrow: q.Borrow}
	}
	return out, nil
}

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
	snap := s.store.Snapshot()
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
		if !principalOf(r.Context()).canNamespace(j.Namespace) {
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
	writeJSON(w, http.StatusOK, out)
}
