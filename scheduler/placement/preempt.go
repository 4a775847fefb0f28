package placement

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// RunInfo is what preemption and backfill read of a live allocation beyond
// its resources. The leader computes it from its clock and the job; the
// engine reads no clock.
type RunInfo struct {
	// Priority is the allocation's job priority, and Queue its queue.
	Priority int
	Queue    string
	// SinceCheckpoint is the work lost if the allocation is evicted now:
	// seconds since its last reported checkpoint, or since it started.
	SinceCheckpoint float64
	// EndsIn is the seconds until the job's declared maxRuntime runs out
	// (+Inf when it declared none).
	EndsIn float64
	// Borrowed: the job's queue holds more than its quota and this
	// allocation is past it; a job within its own quota may reclaim it
	// whatever the priorities.
	Borrowed bool
	// Protected allocations started too recently to be evicted (the
	// leader's --preemption-min-runtime): without a floor the cheapest
	// victims are always the ones just restarted, evicted again and again.
	Protected bool
}

// Preemption is a pending job's decision to evict running gangs: every
// allocation of each victim is stopped and the victim goes back to the
// queue whole; the job is placed once their GPUs are free.
type Preemption struct {
	JobID   string
	Victims []string // job IDs, sorted
	// LostGPUSeconds is the work the victims lose: GPU-seconds since each
	// one's last checkpoint.
	LostGPUSeconds float64
	// Reclaim is set when the job takes back its queue's quota from
	// borrowed allocations rather than outranking them.
	Reclaim bool
	// Nodes are where the job goes once the victims stop (node IDs,
	// sorted): the leader holds them for it (Input.Holds).
	Nodes []string
}

// preempter finds victims for the jobs of one pass that fit nowhere.
type preempter struct {
	in    *Input
	taken map[string]bool // gangs already evicted in this pass
	// closed are the nodes held for other jobs (by index): the job may
	// neither evict work there nor count on them.
	closed map[int]bool
	// live and gangs are the running allocations and their gangs as
	// victims see them, built at the first search of the pass: the
	// allocations and their run info do not change within a pass, and
	// re-reading every one into a map per search was most of its cost.
	live   []liveAlloc
	gangs  map[string]*victimGang
	order  []*victimGang
	search int // the current search, stamped on the gangs it keeps
}

// victimGang is what the victim rules read of one running gang.
type victimGang struct {
	// always: a rank that may never be evicted (unknown run info,
	// protected, already stopping) keeps the whole gang.
	always bool
	// Of the other ranks: the queue (mixed if they differ), the highest
	// priority, and the highest priority of those not borrowed
	// (math.MinInt while there is none).
	queue        string
	mixed        bool
	maxPrio      int
	maxPrioOwned int
	kept         int // the search that keeps it
}

type liveAlloc struct {
	a *api.Allocation
	g *victimGang
}

// victims builds live and gangs once a pass.
func (p *preempter) victims() {
	if p.gangs != nil {
		return
	}
	p.gangs = map[string]*victimGang{}
	for _, a := range p.in.Allocs {
		if a.Terminal() {
			continue
		}
		g := p.gangs[a.JobID]
		if g == nil {
			g = &victimGang{maxPrio: math.MinInt, maxPrioOwned: math.MinInt}
			p.gangs[a.JobID] = g
			p.order = append(p.order, g)
		}
		p.live = append(p.live, liveAlloc{a, g})
		info, ok := p.in.Run[a.ID]
		if !ok || info.Protected || a.DesiredStatus == api.DesiredStop {
			g.always = true
			continue
		}
		if g.maxPrio == math.MinInt {
			g.queue = info.Queue
		} else if info.Queue != g.queue {
			g.mixed = true
		}
		g.maxPrio = max(g.maxPrio, info.Priority)
		if !info.Borrowed {
			g.maxPrioOwned = max(g.maxPrioOwned, info.Priority)
		}
	}
}

// keeps reports whether job may not evict gang g (see victimsFor).
func (g *victimGang) keeps(job *api.Job, reclaim bool, need int64) bool {
	switch {
	case g.always:
		return true
	case need > 0:
		// Over quota: only lower-priority work of its own queue.
		return g.mixed || g.queue != job.Queue || g.maxPrio >= job.Priority
	case reclaim:
		// Borrowed ranks may be reclaimed whatever their priority.
		return g.maxPrioOwned >= job.Priority
	}
	return g.maxPrio >= job.Priority
}

// victimsFor returns the cheapest set of gangs whose eviction lets the job
// fit, using the same gang planner as a normal placement on the cluster as
// it would be without them. It evicts only gangs of lower priority, or
// borrowed ones when reclaim is set, and never the job's own allocations or
// those already stopping.
//
// Replicas are taken one at a time: for each, every node is tried with its
// candidates evicted cheapest first (fewest GPU-seconds since their last
// checkpoint, a gang's cost counting all its ranks; then lowest priority)
// until the replica fits, and the best node wins (least work lost, then
// lowest highest priority, then fewest victims, then fewest of their
// allocations there: a service gives up only its replicas on that node).
// Each trial rebuilds the node's state from the usage without the evicted
// gangs, so GPU memory held by shares is counted exactly.
//
// need > 0 is a job past its queue's quota: it may evict only lower-priority
// work of its own queue, and at least need milli-GPU of it, so that the
// queue is back within its quota.
func (p *preempter) victimsFor(job *api.Job, nodes []*api.Node, usage map[string]*Usage, req Request, g Gang, policy Policy, reclaim bool, need int64) (Preemption, bool) {
	nodeIdx := nodeIndex(nodes)
	// A gang is a victim whole or not at all: one rank that may not be
	// evicted (unknown, protected, already stopping, not below the job's
	// priority, another queue's when the job is over quota) keeps it all.
	p.victims()
	p.search++
	// Work this job evicted once (and that restarted since) is never its
	// victim again: a preemption that did not end in the job's placement
	// must not turn into a loop of evictions.
	for _, id := range job.Preempting {
		if g := p.gangs[id]; g != nil {
			g.kept = p.search
		}
	}
	for _, g := range p.order {
		if g.kept != p.search && g.keeps(job, reclaim, need) {
			g.kept = p.search
		}
	}
	var eligible []*api.Allocation
	for _, la := range p.live {
		a := la.a
		if a.JobID == job.ID || p.taken[a.JobID] || la.g.kept == p.search {
			continue
		}
		if _, ok := nodeIdx[a.NodeID]; ok {
			eligible = append(eligible, a)
		}
	}
	if len(eligible) == 0 {
		return Preemption{}, false // nothing it may evict: no need to look at nodes
	}
	_, index := jobStates(nodes, usage, req)
	// The job-state GPU index of each node GPU index (GPUs of a model the
	// job does not accept are not in its states: freeing them is no help).
	stateGPU := make([]map[int]int, len(nodes))
	for i := range nodes {
		stateGPU[i] = make(map[int]int, len(index[i]))
		for si, gi := range index[i] {
			stateGPU[i][gi] = si
		}
	}
	var running []Running
	for _, a := range eligible {
		ni := nodeIdx[a.NodeID]
		info := p.in.Run[a.ID]
		r := Running{AllocID: a.ID, Gang: a.JobID, Node: ni, GPUMilli: allocShare(a), CPUMilli: a.CPUMilli, Memory: a.MemoryBytes,
			Priority: info.Priority, LostSeconds: info.SinceCheckpoint, Borrowed: info.Borrowed && reclaim && need == 0}
		for _, gi := range a.GPUs {
			if si, ok := stateGPU[ni][gi]; ok {
				r.GPUs = append(r.GPUs, si)
			}
		}
		if r.Priority >= job.Priority && !r.Borrowed {
			continue
		}
		running = append(running, r)
	}
	if len(running) == 0 {
		return Preemption{}, false
	}
	gangCost := map[string]float64{}
	for _, r := range running {
		gangCost[r.Gang] += r.lost()
	}
	t, reps := g.Task, g.Replicas
	if g.SameNode && reps > 1 {
		t, reps = combined(g), 1
	}
	type reserved struct {
		node int
		gpus []int
	}
	var held []reserved
	// nodeState is node ni as the job sees it with the evicted gangs gone
	// and the replicas planned so far on it.
	onNode := make([][]*api.Allocation, len(nodes))
	for _, a := range p.in.Allocs {
		if ni, ok := nodeIdx[a.NodeID]; ok && !a.Terminal() {
			onNode[ni] = append(onNode[ni], a)
		}
	}
	nodeState := func(ni int, evicted map[string]bool) *NodeState {
		id := nodes[ni].ID
		st, _ := jobStates(nodes[ni:ni+1], map[string]*Usage{id: without(usage[id], onNode[ni], evicted)}, req)
		s := st[0]
		s.Order = ni
		s.NotReady = s.NotReady || p.closed[ni]
		for _, h := range held {
			if h.node == ni {
				s.Take(t, h.gpus)
			}
		}
		return s
	}
	victims := map[string]bool{}
	for r := 0; r < reps; r++ {
		var best Victims
		var bestState *NodeState
		found := false
		for ni := range nodes {
			st := nodeState(ni, victims)
			if st.NotReady {
				continue
			}
			v := Victims{Node: ni}
			if st.Check(t) != RuleNone {
				var cands []Running
				for _, o := range running {
					if o.Node == ni && !victims[o.Gang] {
						cands = append(cands, o)
					}
				}
				cheapestFirst(cands, gangCost)
				trial := map[string]bool{}
				for k := range victims {
					trial[k] = true
				}
				fits := false
				for _, o := range cands {
					if trial[o.Gang] {
						continue
					}
					trial[o.Gang] = true
					v.Gangs = append(v.Gangs, o.Gang)
					v.LostGPUs += gangCost[o.Gang]
					v.MaxPrio = max(v.MaxPrio, o.Priority)
					if st = nodeState(ni, trial); st.Check(t) == RuleNone {
						fits = true
						break
					}
				}
				if !fits {
					continue
				}
				// Keep only the victims the replica needs: an earlier,
				// cheaper victim may not have been enough on its own and
				// be unneeded once a bigger one is gone.
				for k := len(v.Gangs) - 2; k >= 0; k-- {
					delete(trial, v.Gangs[k])
					if s2 := nodeState(ni, trial); s2.Check(t) == RuleNone {
						st = s2
						v.Gangs = append(v.Gangs[:k], v.Gangs[k+1:]...)
						continue
					}
					trial[v.Gangs[k]] = true
				}
				v.LostGPUs, v.MaxPrio = 0, 0
				for _, gang := range v.Gangs {
					v.LostGPUs += gangCost[gang]
				}
				for _, o := range cands {
					if trial[o.Gang] && !victims[o.Gang] {
						v.MaxPrio = max(v.MaxPrio, o.Priority)
						v.OnNode++
					}
				}
				sort.Strings(v.Gangs)
			}
			if !found || v.Better(best) {
				best, bestState, found = v, st, true
			}
			if len(v.Gangs) == 0 {
				break // fits with what is already evicted
			}
		}
		if !found {
			return Preemption{}, false
		}
		for _, gang := range best.Gangs {
			victims[gang] = true
		}
		gpus := pickGPUs(bestState, t)
		if t.GPUs > 0 && gpus == nil {
			return Preemption{}, false
		}
		held = append(held, reserved{best.Node, gpus})
	}
	if need > 0 {
		// Back within the quota: add the cheapest remaining gangs of the
		// queue until the victims hold need milli-GPU.
		milli := map[string]int64{}
		for _, a := range p.in.Allocs {
			if !a.Terminal() {
				milli[a.JobID] += allocMilli(a) * int64(len(a.GPUs))
			}
		}
		var freed int64
		for v := range victims {
			freed += milli[v]
		}
		rest := map[string]bool{}
		for _, o := range running {
			if !victims[o.Gang] {
				rest[o.Gang] = true
			}
		}
		order := make([]string, 0, len(rest))
		for gang := range rest {
			order = append(order, gang)
		}
		sort.Slice(order, func(a, b int) bool {
			if gangCost[order[a]] != gangCost[order[b]] {
				return gangCost[order[a]] < gangCost[order[b]]
			}
			return order[a] < order[b]
		})
		for _, gang := range order {
			if freed >= need {
				break
			}
			victims[gang] = true
			freed += milli[gang]
		}
		if freed < need {
			return Preemption{}, false
		}
	}
	if len(victims) == 0 {
		return Preemption{}, false // it fits as is: not a preemption
	}
	// The gang as the planner would place it on the cluster without the
	// victims' allocations on the nodes chosen for it: evict only when
	// that succeeds. (A victim service gives up only its replicas on the
	// preemption's nodes, so the plan may not count on the space its
	// replicas elsewhere hold; a victim gang stops whole either way.)
	chosen := map[string]bool{}
	for _, h := range held {
		chosen[nodes[h.node].ID] = true
	}
	var there []*api.Allocation
	for _, a := range p.in.Allocs {
		if chosen[a.NodeID] {
			there = append(there, a)
		}
	}
	freed, _ := jobStates(nodes, usageWithout(usage, there, victims), req)
	for i := range p.closed {
		freed[i].NotReady = true
	}
	slots, ok := NewNodeIndex(freed).PlaceGang(g, policy, nil)
	if !ok {
		return Preemption{}, false
	}
	pr := Preemption{JobID: job.ID, Nodes: slotNodes(slots, nodes)}
	for v := range victims {
		pr.Victims = append(pr.Victims, v)
		pr.LostGPUSeconds += gangCost[v]
		p.taken[v] = true
		if info := p.victimInfo(v); info.Priority >= job.Priority {
			pr.Reclaim = true
		}
	}
	sort.Strings(pr.Victims)
	return pr, true
}

// slotNodes are the IDs of the nodes slots use, sorted.
func slotNodes(slots []Slot, nodes []*api.Node) []string {
	seen := map[int]bool{}
	var out []string
	for _, s := range slots {
		if !seen[s.Node] {
			seen[s.Node] = true
			out = append(out, nodes[s.Node].ID)
		}
	}
	sort.Strings(out)
	return out
}

// victimInfo is the RunInfo of any live allocation of a job.
func (p *preempter) victimInfo(jobID string) RunInfo {
	for _, a := range p.in.Allocs {
		if a.JobID == jobID {
			if info, ok := p.in.Run[a.ID]; ok {
				return info
			}
		}
	}
	return RunInfo{}
}

// allocShare is the milli of its one GPU a shared allocation holds; 0 for
// whole GPUs (the convention of Running and Ending).
func allocShare(a *api.Allocation) int64 {
	if a.GPUMilli > 0 && a.GPUMilli < MilliPerGPU {
		return a.GPUMilli
	}
	return 0
}

// preemptorsFirst moves the jobs waiting for their victims to stop to the
// front, keeping the order otherwise: the room they evicted is theirs.
func preemptorsFirst(jobs []*api.Job) []*api.Job {
	out := make([]*api.Job, 0, len(jobs))
	for _, j := range jobs {
		if len(j.Preempting) > 0 {
			out = append(out, j)
		}
	}
	for _, j := range jobs {
		if len(j.Preempting) == 0 {
			out = append(out, j)
		}
	}
	return out
}

// admits says whether a job may use the held nodes: it declared a
// maxRuntime that ends before the held job can start.
func (r *reservation) admits(job *api.Job) bool {
	if r.preemptor {
		return job.ID == r.jobID
	}
	rt := time.Duration(job.Spec.MaxRuntime).Seconds()
	return r.known && rt > 0 && rt <= r.At
}

// usageWithout is usage less what the given jobs' live allocations hold
// (copied on write: usage is not changed).
func usageWithout(usage map[string]*Usage, allocs []*api.Allocation, jobs map[string]bool) map[string]*Usage {
	byNode := map[string][]*api.Allocation{}
	for _, a := range allocs {
		if jobs[a.JobID] {
			byNode[a.NodeID] = append(byNode[a.NodeID], a)
		}
	}
	out := make(map[string]*Usage, len(usage))
	for k, u := range usage {
		out[k] = u
	}
	for id, as := range byNode {
		out[id] = without(out[id], as, jobs)
	}
	return out
}

// without is one node's usage less what the given jobs' live allocations
// among allocs hold; u itself is not changed.
func without(u *Usage, allocs []*api.Allocation, jobs map[string]bool) *Usage {
	copied := false
	for _, a := range allocs {
		if !jobs[a.JobID] || a.Terminal() || u == nil {
			continue
		}
		if !copied {
			u, copied = u.Clone(), true
		}
		for _, g := range a.GPUs {
			u.GPUMilli[g] -= allocMilli(a)
			if a.GPUMilli > 0 {
				u.GPUMemory[g] -= a.GPUMemoryBytes
			}
			if u.GPUMilli[g] <= 0 {
				delete(u.GPUMilli, g)
				delete(u.GPUMemory, g)
				delete(u.GPUs, g)
				delete(u.Jobs, g)
			}
		}
		u.CPUMilli -= a.CPUMilli
		u.MemoryBytes -= a.MemoryBytes
	}
	return u
}

// stoppingJobs returns the jobs whose evicted allocations (asked to stop,
// not yet ended) still hold resources. A victim placed again since holds
// new allocations that are no business of its preemptor's.
func stoppingJobs(allocs []*api.Allocation) map[string]bool {
	out := map[string]bool{}
	for _, a := range allocs {
		if !a.Terminal() && a.DesiredStatus == api.DesiredStop {
			out[a.JobID] = true
		}
	}
	return out
}

// waitingOn returns the jobs of ids still stopping, sorted.
func waitingOn(stopping map[string]bool, ids []string) []string {
	var out []string
	for _, id := range ids {
		if stopping[id] && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// reservation is the room held for the head-of-line job while it waits.
type reservation struct {
	jobID string
	Reservation
	known bool // At is a time the reservation can promise
	// preemptor: the nodes a committed preemption freed for jobID, closed
	// to every other job whatever its runtime.
	preemptor bool
}

// preemptHolds are the input's preemption holds as reservations, on the
// nodes of this pass (a held node that is gone or ineligible holds
// nothing).
func preemptHolds(in *Input, idx map[string]int) []reservation {
	out := make([]reservation, 0, len(in.Holds))
	for _, h := range in.Holds {
		out = append(out, preemptHold(h.JobID, h.Nodes, idx))
	}
	return out
}

// preemptHold is the reservation of nodeIDs for a preemptor; idx maps node
// IDs to this pass's node indexes.
func preemptHold(jobID string, nodeIDs []string, idx map[string]int) reservation {
	r := reservation{jobID: jobID, preemptor: true, Reservation: Reservation{Nodes: map[int]bool{}}}
	for _, id := range nodeIDs {
		if i, ok := idx[id]; ok {
			r.Nodes[i] = true
		}
	}
	return r
}

// reserveFor computes a job's reservation from the live allocations'
// declared ends, on the nodes none of held holds (reservations never
// share a node, so each one's time holds whatever the others do).
// Allocations with no declared end are released last; when the job needs
// one of them the time is unknown, and only jobs kept off the reserved
// nodes may start (backfill never delays the held job). Only the first
// reservation of a pass may be unknown: others would keep their nodes
// idle for no time anyone can bound.
func reserveFor(job *api.Job, in *Input, nodes []*api.Node, usage map[string]*Usage, req Request, g Gang, policy Policy, held []reservation) (reservation, bool) {
	const never = 1e15 // seconds: after every declared end
	states, index := jobStates(nodes, usage, req)
	for _, r := range held {
		for i := range r.Nodes {
			states[i].NotReady = true
		}
	}
	nodeIdx := nodeIndex(nodes)
	var ending []Ending
	for _, a := range in.Allocs {
		ni, ok := nodeIdx[a.NodeID]
		if !ok || a.Terminal() {
			continue
		}
		at := never
		if info, ok := in.Run[a.ID]; ok && !math.IsInf(info.EndsIn, 1) && !math.IsNaN(info.EndsIn) {
			at = max(info.EndsIn, 0)
		}
		if a.DesiredStatus == api.DesiredStop {
			at = 0 // stopping now
		}
		e := Ending{Node: ni, GPUMilli: allocShare(a), CPUMilli: a.CPUMilli, Memory: a.MemoryBytes, EndsAt: at}
		for si, gi := range index[ni] {
			for _, ag := range a.GPUs {
				if ag == gi {
					e.GPUs = append(e.GPUs, si)
				}
			}
		}
		ending = append(ending, e)
	}
	r, ok := Reserve(states, ending, g, policy)
	if !ok {
		return reservation{}, false
	}
	res := reservation{jobID: job.ID, Reservation: r, known: r.At < never}
	if !res.known {
		if len(held) > 0 {
			return reservation{}, false
		}
		res.At = 0
	}
	return res, true
}

// hold is the reservation as Result reports it.
func (r reservation) hold(nodes []*api.Node) Hold {
	h := Hold{JobID: r.jobID, In: r.At}
	for i := range r.Nodes {
		h.Nodes = append(h.Nodes, nodes[i].ID)
	}
	sort.Strings(h.Nodes)
	return h
}

// describe says which nodes the reservation holds and until when.
func (r reservation) describe(nodes []*api.Node) string {
	names := make([]string, 0, len(r.Nodes))
	for i := range r.Nodes {
		names = append(names, nodes[i].Name)
	}
	sort.Strings(names)
	if len(names) > 4 {
		names = append(names[:4], fmt.Sprintf("and %d more", len(names)-4))
	}
	when := "until it starts"
	switch {
	case r.preemptor:
		return fmt.Sprintf("node(s) %s held for job %s, which preempted work there", strings.Join(names, ", "), r.jobID)
	case r.known:
		when = fmt.Sprintf("for about %s", fmtSeconds(r.At))
	}
	return fmt.Sprintf("node(s) %s held for job %s %s", strings.Join(names, ", "), r.jobID, when)
}

func fmtSeconds(s float64) string {
	switch {
	case s < 120:
		return fmt.Sprintf("%.0fs", s)
	case s < 7200:
		return fmt.Sprintf("%.0fm", s/60)
	}
	return fmt.Sprintf("%.1fh", s/3600)
}

// nodeIndex maps node IDs to their index in nodes.
func nodeIndex(nodes []*api.Node) map[string]int {
	idx := make(map[string]int, len(nodes))
	for i, n := range nodes {
		idx[n.ID] = i
	}
	return idx
}
