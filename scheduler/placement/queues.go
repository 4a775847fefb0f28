package placement

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Queue is a queue's quota and fair-share weight. Queues and their usage
// are inputs: placement keeps no state between passes.
type Queue struct {
	Name string
	// QuotaGPUs is the GPUs the queue is guaranteed; jobs past it may
	// borrow idle GPUs, and borrowed GPUs are reclaimable by preemption.
	QuotaGPUs int
	// Weight scales the queue's fair share (default 1).
	Weight float64
	// Borrow allows running past the quota on idle capacity.
	Borrow bool
}

// Demand is what a queue holds or a job asks, in the resources dominant
// resource fairness compares. GPUs are counted in milli-GPU, so a share
// of a GPU counts as its fraction.
type Demand struct {
	GPUMilli int64
	CPUMilli int64
	Memory   int64
}

// Add returns d + o.
func (d Demand) Add(o Demand) Demand {
	return Demand{d.GPUMilli + o.GPUMilli, d.CPUMilli + o.CPUMilli, d.Memory + o.Memory}
}

// FormatGPUs renders milli-GPU as GPUs: "2", "1.5", "0.25".
func FormatGPUs(milli int64) string {
	return strconv.FormatFloat(float64(milli)/MilliPerGPU, 'f', -1, 64)
}

// DominantShare is d's largest share of the cluster's capacity, divided
// by the queue's weight (Ghodsi et al., DRF).
func DominantShare(d, capacity Demand, weight float64) float64 {
	if weight <= 0 {
		weight = 1
	}
	s := 0.0
	if capacity.GPUMilli > 0 {
		s = max(s, float64(d.GPUMilli)/float64(capacity.GPUMilli))
	}
	if capacity.CPUMilli > 0 {
		s = max(s, float64(d.CPUMilli)/float64(capacity.CPUMilli))
	}
	if capacity.Memory > 0 {
		s = max(s, float64(d.Memory)/float64(capacity.Memory))
	}
	return s / weight
}

// PendingJob is a pending job as fair share sees it.
type PendingJob struct {
	ID       string
	Queue    string
	Priority int
	Order    int // submission order (lower first)
	Demand   Demand
}

// FairOrder orders pending jobs for one pass by dominant resource
// fairness: repeatedly the job at the head of the queue with the lowest
// dominant share (weights applied) goes next, as if it had started, so
// one queue cannot take the whole cluster while others wait. Within a
// queue, higher priority first, then submission order. used is what each
// queue holds now.
func FairOrder(jobs []PendingJob, queues map[string]Queue, used map[string]Demand, capacity Demand) []PendingJob {
	byQueue := map[string][]PendingJob{}
	var names []string
	for _, j := range jobs {
		if _, ok := byQueue[j.Queue]; !ok {
			names = append(names, j.Queue)
		}
		byQueue[j.Queue] = append(byQueue[j.Queue], j)
	}
	sort.Strings(names)
	for _, q := range names {
		list := byQueue[q]
		sort.SliceStable(list, func(a, b int) bool {
			if list[a].Priority != list[b].Priority {
				return list[a].Priority > list[b].Priority
			}
			return list[a].Order < list[b].Order
		})
	}
	held := map[string]Demand{}
	for q, d := range used {
		held[q] = d
	}
	out := make([]PendingJob, 0, len(jobs))
	for len(out) < len(jobs) {
		best := ""
		bestShare := 0.0
		for _, q := range names {
			if len(byQueue[q]) == 0 {
				continue
			}
			s := DominantShare(held[q], capacity, queues[q].Weight)
			if best == "" || s < bestShare {
				best, bestShare = q, s
			}
		}
		j := byQueue[best][0]
		byQueue[best] = byQueue[best][1:]
		held[best] = held[best].Add(j.Demand)
		out = append(out, j)
	}
	return out
}

// Admission is the quota decision for one job.
type Admission struct {
	Admit bool
	// Borrowing: the job runs past its queue's quota on idle GPUs and may
	// be preempted when another queue needs its quota back.
	Borrowing bool
	Reason    string // why not admitted ("queue research at quota 64/64 GPUs")
}

// Admit applies the queue's hard GPU quota to a job asking for milli
// milli-GPU (a share counts as its fraction): it fits under the quota, or
// borrows idle GPUs when the queue allows it and the cluster has them free
// beyond what other queues are guaranteed and not using (idleMilli is
// that much). usedMilli is what the queue holds.
func Admit(q Queue, usedMilli, milli, idleMilli int64) Admission {
	quota := int64(q.QuotaGPUs) * MilliPerGPU
	if q.QuotaGPUs <= 0 || usedMilli+milli <= quota {
		return Admission{Admit: true}
	}
	if q.Borrow && milli <= idleMilli {
		return Admission{Admit: true, Borrowing: true}
	}
	return Admission{Reason: fmt.Sprintf("queue %s at quota %s/%d GPUs", q.Name, FormatGPUs(usedMilli), q.QuotaGPUs)}
}

// Running is a live allocation as preemption sees it.
type Running struct {
	AllocID  string
	Gang     string // job ID: a gang is evicted and requeued whole
	Node     int    // index in the nodes given to ChooseVictims
	GPUs     []int
	GPUMilli int64 // per GPU for a share; 0 for whole GPUs
	CPUMilli int64
	Memory   int64
	Priority int
	// LostSeconds is the work lost if evicted now: seconds since its last
	// reported checkpoint (or since it started), per GPU it holds.
	LostSeconds float64
	// Borrowed allocations (past their queue's quota) are reclaimable by
	// any priority.
	Borrowed bool
}

// lost is the GPU-seconds an allocation loses when evicted.
func (r Running) lost() float64 { return r.LostSeconds * float64(max(len(r.GPUs), 1)) }

// Victims is a preemption choice: the gangs to evict, and where the
// replica then fits.
type Victims struct {
	Node     int
	Gangs    []string
	LostGPUs float64 // GPU-seconds of work lost
	MaxPrio  int
	// OnNode counts the victims' allocations on Node: a service gives up
	// only its replicas there, so between otherwise equal choices the
	// node with fewer of them stops less (a gang stops whole either way).
	OnNode int
}

// ChooseVictims finds, for one replica t of a job with the given priority,
// the set of lower-priority (or borrowed) gangs to evict that loses the
// least work: fewest GPU-seconds since each victim's last checkpoint, then
// the lowest highest-priority among victims, then the fewest victims. A
// victim's whole gang counts (its replicas on other nodes are lost too).
// nodes are the current node states (not changed). ok is false when no
// eviction makes room.
func ChooseVictims(nodes []*NodeState, running []Running, t Task, priority int) (Victims, bool) {
	gangCost := map[string]float64{}
	for _, r := range running {
		gangCost[r.Gang] += r.lost()
	}
	var best Victims
	found := false
	for ni, n := range nodes {
		if n.NotReady {
			continue
		}
		if r := n.Check(t); r == RuleNone {
			return Victims{Node: ni}, true // fits without preemption
		}
		var cands []Running
		for _, r := range running {
			if r.Node == ni && (r.Priority < priority || r.Borrowed) {
				cands = append(cands, r)
			}
		}
		cheapestFirst(cands, gangCost)
		trial := n.Clone()
		v := Victims{Node: ni}
		taken := map[string]bool{}
		for _, r := range cands {
			if trial.Check(t) == RuleNone {
				break
			}
			if !taken[r.Gang] {
				taken[r.Gang] = true
				v.Gangs = append(v.Gangs, r.Gang)
				v.LostGPUs += gangCost[r.Gang]
				v.MaxPrio = max(v.MaxPrio, r.Priority)
			}
			// Free everything the gang holds on this node.
			for _, o := range running {
				if o.Gang == r.Gang && o.Node == ni {
					trial.Free(o.CPUMilli, o.Memory, o.GPUMilli, o.GPUs)
				}
			}
		}
		if trial.Check(t) != RuleNone {
			continue
		}
		sort.Strings(v.Gangs)
		if !found || v.Better(best) {
			best, found = v, true
		}
	}
	return best, found
}

// Better reports whether preemption choice a beats b: less work lost,
// then a lower highest victim priority, then fewer victims, then fewer of
// their allocations on the node, then names.
func (a Victims) Better(b Victims) bool {
	switch {
	case a.LostGPUs != b.LostGPUs:
		return a.LostGPUs < b.LostGPUs
	case a.MaxPrio != b.MaxPrio:
		return a.MaxPrio < b.MaxPrio
	case len(a.Gangs) != len(b.Gangs):
		return len(a.Gangs) < len(b.Gangs)
	case a.OnNode != b.OnNode:
		return a.OnNode < b.OnNode
	}
	return strings.Join(a.Gangs, ",") < strings.Join(b.Gangs, ",")
}

// cheapestFirst orders victim candidates by their gang's lost work, then
// by priority (stable: ties keep their order).
func cheapestFirst(cands []Running, gangCost map[string]float64) {
	sort.SliceStable(cands, func(a, b int) bool {
		ca, cb := gangCost[cands[a].Gang], gangCost[cands[b].Gang]
		if ca != cb {
			return ca < cb
		}
		return cands[a].Priority < cands[b].Priority
	})
}
