package server

import (
	"fmt"
	"net/http"
	"os"
	"sort"

	"sigs.k8s.io/yaml"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/placement"
	"github.com/ark-sched/ark/scheduler/state"
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
	if q, ok := s.cfg.Queues[name]; ok {
		return q
	}
	return placement.Queue{Name: name, Weight: 1}
}

func demandOf(j *api.Job) placement.Demand {
	req, err := placement.RequestOf(j)
	if err != nil {
		return placement.Demand{}
	}
	n := int64(j.Spec.Replicas)
	return placement.Demand{GPUMilli: j.Spec.GPUMilliTotal(), CPUMilli: req.CPUMilli * n, Memory: req.MemoryBytes * n}
}

// admit orders pending jobs by fair share and holds back those over their
// queue's quota (with the reason). It returns the jobs to try, in order.
//
// With preemption on, a queue may borrow any idle GPU (what it borrows is
// reclaimed by preemption when another queue needs its quota back), and a
// job over its queue's quota is still tried when evicting lower-priority
// work of its own queue brings the queue back within quota: quotaNeed gets
// the milli-GPU of that work it must evict first.
func (s *Server) admit(snap *state.Snapshot, pending []*api.Job, nodes []*api.Node, live []*api.Allocation, unplaced map[string]string, quotaNeed map[string]int64) []*api.Job {
	var capacity placement.Demand
	for _, n := range nodes {
		if n.Status == api.NodeReady {
			capacity = capacity.Add(placement.Demand{GPUMilli: int64(len(n.GPUs)) * placement.MilliPerGPU, CPUMilli: n.CPUMilli, Memory: n.MemoryBytes})
		}
	}
	used := map[string]placement.Demand{}
	job := jobLookup(snap)
	queueOf := func(id string) string {
		if j := job(id); j != nil {
			return j.Queue
		}
		return ""
	}
	for _, a := range live {
		q := queueOf(a.JobID)
		used[q] = used[q].Add(placement.Demand{GPUMilli: allocGPUMilli(a), CPUMilli: a.CPUMilli, Memory: a.MemoryBytes})
	}
	// lowerThan is the milli-GPU a queue's running work below a priority
	// holds (and is not already stopping): what a job of that queue could
	// evict to stay within its quota.
	heldAt := map[string]map[int]int64{} // queue -> priority -> milli-GPU held
	for _, a := range live {
		if a.DesiredStatus == api.DesiredStop {
			continue
		}
		if j := job(a.JobID); j != nil {
			if heldAt[j.Queue] == nil {
				heldAt[j.Queue] = map[int]int64{}
			}
			heldAt[j.Queue][j.Priority] += allocGPUMilli(a)
		}
	}
	lowerThan := func(queue string, prio int) int64 {
		var m int64
		for p, milli := range heldAt[queue] {
			if p < prio {
				m += milli
			}
		}
		return m
	}
	byID := map[string]*api.Job{}
	in := make([]placement.PendingJob, len(pending))
	for i, j := range pending {
		byID[j.ID] = j
		in[i] = placement.PendingJob{ID: j.ID, Queue: j.Queue, Priority: j.Priority, Order: int(j.CreateIndex), Demand: demandOf(j)}
	}
	queues := map[string]placement.Queue{}
	for _, j := range pending {
		queues[j.Queue] = s.queue(j.Queue)
	}
	order := placement.FairOrder(in, queues, used, capacity)

	// GPUs no queue's quota needs: free GPUs less what other queues are
	// guaranteed and do not use yet (all in milli-GPU).
	freeMilli := capacity.GPUMilli
	for _, d := range used {
		freeMilli -= d.GPUMilli
	}
	reserved := func(except string) int64 {
		if !s.cfg.NoPreemption {
			return 0 // borrowed GPUs are reclaimed by preemption
		}
		var r int64
		for name, q := range s.cfg.Queues {
			if quota := int64(q.QuotaGPUs) * placement.MilliPerGPU; name != except && quota > used[name].GPUMilli {
				r += quota - used[name].GPUMilli
			}
		}
		return r
	}
	out := make([]*api.Job, 0, len(order))
	for _, pj := range order {
		j := byID[pj.ID]
		q := s.queue(j.Queue)
		adm := placement.Admit(q, used[j.Queue].GPUMilli, pj.Demand.GPUMilli, max(0, freeMilli-reserved(j.Queue)))
		if !adm.Admit {
			quota := int64(q.QuotaGPUs) * placement.MilliPerGPU
			over := used[j.Queue].GPUMilli + pj.Demand.GPUMilli - quota
			if !s.cfg.NoPreemption && over > 0 && lowerThan(j.Queue, j.Priority) >= over {
				quotaNeed[j.ID] = over
				out = append(out, j)
				continue
			}
			unplaced[j.ID] = "waiting for quota: " + adm.Reason
			continue
		}
		// Count it as started for the jobs after it in this pass.
		used[j.Queue] = used[j.Queue].Add(pj.Demand)
		freeMilli -= pj.Demand.GPUMilli
		out = append(out, j)
	}
	return out
}

// allocGPUMilli is the milli-GPU an allocation holds: its share, or 1000
// per whole GPU.
func allocGPUMilli(a *api.Allocation) int64 {
	if a.GPUMilli > 0 {
		return a.GPUMilli * int64(len(a.GPUs))
	}
	return int64(len(a.GPUs)) * placement.MilliPerGPU
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
					q.usedMilli += allocGPUMilli(a)
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
