package sched

import (
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/placement"
)

// Queues order pending jobs by dominant resource fairness across queues
// (weights applied; priority then age within a queue), and a job that
// would take its queue past its GPU quota waits, unless the queue may
// borrow GPUs that no other queue's quota needs.

func demandOf(j *api.Job) placement.Demand {
	req, err := placement.RequestOf(j)
	if err != nil {
		return placement.Demand{}
	}
	n := int64(j.Spec.Replicas)
	return placement.Demand{GPUMilli: j.Spec.GPUMilliTotal(), CPUMilli: req.CPUMilli * n, Memory: req.MemoryBytes * n}
}

// admission is the outcome of admit: the jobs to try, in order, the ones
// held for quota (with the reason), and for jobs over their quota that
// may evict lower-priority work of their own queue, the milli-GPU of it
// they must evict first.
type admission struct {
	order     []*api.Job
	held      map[string]string
	quotaNeed map[string]int64
}

// admit orders pending jobs by fair share and holds back those over their
// queue's quota.
//
// With preemption on, a queue may borrow any idle GPU (what it borrows is
// reclaimed by preemption when another queue needs its quota back), and a
// job over its queue's quota is still tried when evicting lower-priority
// work of its own queue brings the queue back within quota.
func admit(cfg *Config, job func(string) *api.Job, pending []*api.Job, nodes []*api.Node, live []*api.Allocation, now time.Time) admission {
	out := admission{held: map[string]string{}, quotaNeed: map[string]int64{}}
	var capacity placement.Demand
	for _, n := range nodes {
		if n.Status == api.NodeReady {
			capacity = capacity.Add(placement.Demand{GPUMilli: int64(len(n.GPUs)) * placement.MilliPerGPU, CPUMilli: n.CPUMilli, Memory: n.MemoryBytes})
		}
	}
	used := map[string]placement.Demand{}
	// heldAt is the milli-GPU a queue's running work holds per priority
	// (not counting work already stopping): what a job of that queue
	// could evict to stay within its quota.
	heldAt := map[string]map[int]int64{}
	for _, a := range live {
		j := job(a.JobID)
		q := ""
		if j != nil {
			q = j.Queue
		}
		used[q] = used[q].Add(placement.Demand{GPUMilli: AllocGPUMilli(a), CPUMilli: a.CPUMilli, Memory: a.MemoryBytes})
		if j == nil || a.DesiredStatus == api.DesiredStop {
			continue
		}
		if heldAt[q] == nil {
			heldAt[q] = map[int]int64{}
		}
		heldAt[q][j.Priority] += AllocGPUMilli(a)
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
	rank, prio := orderRanks(cfg, pending, now)
	in := make([]placement.PendingJob, len(pending))
	queues := map[string]placement.Queue{}
	for i, j := range pending {
		byID[j.ID] = j
		in[i] = placement.PendingJob{ID: j.ID, Queue: j.Queue, Priority: prio(j), Order: rank(j), Demand: demandOf(j)}
		queues[j.Queue] = cfg.Queue(j.Queue)
	}
	order := placement.FairOrder(in, queues, used, capacity)

	// GPUs no queue's quota needs: free GPUs less what other queues are
	// guaranteed and do not use yet (all in milli-GPU).
	freeMilli := capacity.GPUMilli
	for _, d := range used {
		freeMilli -= d.GPUMilli
	}
	reserved := func(except string) int64 {
		if !cfg.NoPreemption {
			return 0 // borrowed GPUs are reclaimed by preemption
		}
		var r int64
		for name, q := range cfg.Queues {
			if quota := int64(q.QuotaGPUs) * placement.MilliPerGPU; name != except && quota > used[name].GPUMilli {
				r += quota - used[name].GPUMilli
			}
		}
		return r
	}
	out.order = make([]*api.Job, 0, len(order))
	for _, pj := range order {
		j := byID[pj.ID]
		q := cfg.Queue(j.Queue)
		adm := placement.Admit(q, used[j.Queue].GPUMilli, pj.Demand.GPUMilli, max(0, freeMilli-reserved(j.Queue)))
		if !adm.Admit {
			quota := int64(q.QuotaGPUs) * placement.MilliPerGPU
			over := used[j.Queue].GPUMilli + pj.Demand.GPUMilli - quota
			if !cfg.NoPreemption && over > 0 && lowerThan(j.Queue, j.Priority) >= over {
				out.quotaNeed[j.ID] = over
				out.order = append(out.order, j)
				continue
			}
			out.held[j.ID] = "waiting for quota: " + adm.Reason
			continue
		}
		// Count it as started for the jobs after it in this pass.
		used[j.Queue] = used[j.Queue].Add(pj.Demand)
		freeMilli -= pj.Demand.GPUMilli
		out.order = append(out.order, j)
	}
	return out
}

// AllocGPUMilli is the milli-GPU an allocation holds: its share, or 1000
// per whole GPU.
func AllocGPUMilli(a *api.Allocation) int64 {
	if a.GPUMilli > 0 {
		return a.GPUMilli * int64(len(a.GPUs))
	}
	return int64(len(a.GPUs)) * placement.MilliPerGPU
}
