package placementsim

import (
	"cmp"
	"math"
	"slices"
	"strconv"

	"github.com/ark-sched/ark/scheduler/placement"
)

// passArk is one pass of Ark's scheduler: fair order, quota admission,
// placement, preemption, and EASY backfill behind up to Reservations
// reservations (see SimConfig).
func (s *sim) passArk() {
	jobs := make([]placement.PendingJob, len(s.pending))
	for k, i := range s.pending {
		st := &s.tasks[i]
		jobs[k] = placement.PendingJob{ID: st.id, Queue: st.Queue, Priority: st.Priority, Order: i, Demand: demand(st.Task, 1)}
	}
	order := placement.FairOrder(jobs, s.queues, s.usedQ, s.capacity)
	var resv []simReservation
	var ending []placement.Ending  // computed once per pass, when first needed
	failed := map[string]bool{}    // shapes no node fits now
	noVictims := map[string]bool{} // eviction searches that found nothing
	tried, attempts := 0, 0
	for _, pj := range order {
		if tried >= s.cfg.Window {
			break
		}
		i, _ := strconv.Atoi(pj.ID)
		st := &s.tasks[i]
		if s.run[i].state != waiting {
			continue
		}
		// Borrowing is work-conserving: a queue past its quota may use any
		// free GPU, and gives it back by preemption when a queue under its
		// quota needs it (reclaim). The server's admit instead keeps other
		// queues' unused quota free, which with quotas summing to the
		// cluster never lets a queue borrow.
		adm := placement.Admit(s.queues[st.Queue], s.usedQ[st.Queue].GPUMilli, st.Task.TotalMilli(), s.capacity.GPUMilli-s.used)
		if !adm.Admit {
			// Over its quota, a task may still take the place of
			// lower-priority tasks of its own queue (placement.Admit does
			// not see them; the server holds such a task for quota).
			placed := false
			if s.cfg.Preempt && attempts < preemptAttempts {
				var searched bool
				placed, searched = s.preempt(i, noVictims, true)
				if searched {
					attempts++
				}
			}
			if !placed {
				s.res.QuotaHeld++
			} else if len(resv) > 0 {
				s.res.Backfilled++
			}
			continue
		}
		tried++
		key := shapeKey(st.Task)
		if !failed[key] {
			n, gpus := s.c.Select(st.Task, s.cfg.Policy, nil)
			if n < 0 {
				failed[key] = true
			} else {
				if skip := blockedBy(resv, s.declared(i)); len(skip) > 0 && skip[n] {
					n, gpus = s.selectOff(st.Task, skip)
				}
				if n >= 0 {
					if len(resv) > 0 {
						s.res.Backfilled++
					}
					s.start(i, n, gpus)
					continue
				}
			}
		}
		if s.cfg.Preempt && attempts < preemptAttempts {
			placed, searched := s.preempt(i, noVictims, false)
			if searched {
				attempts++
			}
			if placed {
				if len(resv) > 0 {
					s.res.Backfilled++
				}
				continue
			}
		}
		if s.cfg.Backfill && st.Task.GPUs >= max(s.cfg.ReserveGPUs, 1) {
			if ending == nil {
				ending = s.endings()
			}
			resv = s.reserve(resv, i, ending)
		}
	}
}

// simReservation is one task's reservation in a pass.
type simReservation struct {
	task int
	placement.Reservation
}

// reserve gives waiting task i a reservation if the pass has room for one
// (SimConfig.Reservations, ReserveBig, ReserveBySize): computed on the
// nodes no earlier reservation holds, so reservations never share a node.
func (s *sim) reserve(resv []simReservation, i int, ending []placement.Ending) []simReservation {
	limit := max(s.cfg.Reservations, 1)
	gpus := s.tasks[i].Task.GPUs
	if len(resv) > 0 && s.cfg.ReserveBig && gpus < 2 {
		return resv // only the head and multi-GPU tasks hold nodes
	}
	drop := -1
	if len(resv) >= limit {
		if !s.cfg.ReserveBySize {
			return resv
		}
		// The smallest reservation after the head's gives way to a bigger
		// task: the tasks already admitted past it stay correct, and the
		// new reservation is computed on the cluster with them running.
		for k := 1; k < len(resv); k++ {
			if g := s.tasks[resv[k].task].Task.GPUs; g < gpus && (drop < 0 || g < s.tasks[resv[drop].task].Task.GPUs) {
				drop = k
			}
		}
		if drop < 0 {
			return resv
		}
	}
	held := map[int]bool{}
	for k, r := range resv {
		if k == drop {
			continue
		}
		for n := range r.Nodes {
			held[n] = true
		}
	}
	r, ok := reserveOne(s.nodes, ending, s.tasks[i].Task, s.cfg.Policy, held)
	if !ok {
		return resv
	}
	if drop >= 0 {
		resv = append(resv[:drop], resv[drop+1:]...)
	}
	s.reserved[i] = true
	return append(resv, simReservation{task: i, Reservation: r})
}

// blockedBy is the nodes a task declaring runtime seconds may not use:
// those of every reservation it could delay (placement.CanBackfill's rule
// for each reservation).
func blockedBy(resv []simReservation, runtime float64) map[int]bool {
	var skip map[int]bool
	for _, r := range resv {
		if runtime > 0 && runtime <= r.At {
			continue
		}
		if skip == nil {
			skip = map[int]bool{}
		}
		for n := range r.Nodes {
			skip[n] = true
		}
	}
	return skip
}

// declared is the maxRuntime task i declares for its current attempt.
func (s *sim) declared(i int) float64 {
	return s.run[i].remaining * max(s.tasks[i].Overestimate, 1)
}

// selectOff is the policy's best node for t among those not in skip.
func (s *sim) selectOff(t placement.Task, skip map[int]bool) (int, []int) {
	idx := make([]int, 0, len(s.nodes))
	sub := make([]*placement.NodeState, 0, len(s.nodes))
	for i, n := range s.nodes {
		if !skip[i] {
			idx, sub = append(idx, i), append(sub, n)
		}
	}
	k, gpus := placement.Select(sub, t, s.cfg.Policy, nil)
	if k < 0 {
		return -1, nil
	}
	return idx[k], gpus
}

// endings are the running tasks with their declared ends, seconds from now.
func (s *sim) endings() []placement.Ending {
	var out []placement.Ending
	for node, ids := range s.byNode {
		for _, j := range ids {
			t, r := s.tasks[j].Task, &s.run[j]
			out = append(out, placement.Ending{Node: node, GPUs: r.gpus, GPUMilli: shareMilli(t), CPUMilli: t.CPUMilli, Memory: t.Memory,
				EndsAt: r.start + s.declared(j) - s.now})
		}
	}
	return out
}

// shareMilli is the per-GPU milli of a share, 0 for whole GPUs (the
// convention of placement.Running and placement.Ending).
func shareMilli(t placement.Task) int64 {
	if t.Shared() {
		return t.GPUMilli
	}
	return 0
}

// preempt looks for victims for waiting task i and, when it finds some,
// evicts them and starts i in their place. As in the engine's Place:
// victims are lower-priority tasks of any queue and, when i's queue stays
// within its quota with i, tasks running on borrowed quota (any priority;
// see borrowed). Each node is asked separately (placement.ChooseVictims
// scans every running allocation for every node it is given) and the
// cheapest answer wins, by ChooseVictims' own order. Like the engine, it
// ignores the reservation: a preemptor outranks the held task.
//
// overQuota is set for a task Admit held: then only lower-priority tasks of
// its own queue are candidates, and a choice counts only if evicting it
// brings the task under Admit (within the quota, or borrowing).
func (s *sim) preempt(i int, noVictims map[string]bool, overQuota bool) (placed, searched bool) {
	st := &s.tasks[i]
	q := s.queues[st.Queue]
	milli := st.Task.TotalMilli()
	reclaim := !overQuota && q.QuotaGPUs > 0 && s.usedQ[st.Queue].GPUMilli+milli <= int64(q.QuotaGPUs)*placement.MilliPerGPU
	key := shapeKey(st.Task) + "/" + st.Queue + "/" + strconv.Itoa(st.Priority) + "/" + strconv.FormatBool(reclaim) + "/" + strconv.FormatBool(overQuota)
	if noVictims[key] {
		return false, false
	}
	var borrowed map[int]bool
	if reclaim {
		borrowed = s.borrowed(st.Queue)
	}
	var best placement.Victims
	found := false
	var rs []placement.Running
	for node, ids := range s.byNode {
		rs = rs[:0]
		for _, j := range ids {
			o := &s.tasks[j]
			if s.now-s.run[j].start < s.cfg.MinRuntime {
				continue // protected: too recently (re)started
			}
			switch {
			case o.Priority < st.Priority && (!overQuota || o.Queue == st.Queue):
				rs = append(rs, s.running(j, false))
			case borrowed[j]:
				rs = append(rs, s.running(j, true))
			}
		}
		if len(rs) == 0 || !s.fitsWithout(node, rs, st.Task) {
			continue
		}
		v, ok := placement.ChooseVictims([]*placement.NodeState{s.nodes[node]}, rs, st.Task, st.Priority)
		if !ok {
			continue
		}
		v.Node = node
		if overQuota {
			var freed int64
			for _, g := range v.Gangs {
				j, _ := strconv.Atoi(g)
				freed += s.tasks[j].Task.TotalMilli()
			}
			if !placement.Admit(q, s.usedQ[st.Queue].GPUMilli-freed, milli, s.capacity.GPUMilli-s.used+freed).Admit {
				continue
			}
		}
		if !found || v.Better(best) {
			best, found = v, true
		}
	}
	if !found {
		noVictims[key] = true
		return false, true
	}
	for _, g := range best.Gangs {
		j, _ := strconv.Atoi(g)
		s.evict(j)
	}
	n := s.nodes[best.Node]
	if n.Check(st.Task) != placement.ReasonNone {
		return false, true // cannot happen: ChooseVictims checked the node
	}
	_, gpus := s.cfg.Policy.Score(n, st.Task)
	s.start(i, best.Node, gpus)
	return true, true
}

// fitsWithout says whether t would fit on the node once every candidate
// in rs is gone: a cheap bound that spares most ChooseVictims calls.
func (s *sim) fitsWithout(node int, rs []placement.Running, t placement.Task) bool {
	if s.empty[node].Check(t) != placement.ReasonNone {
		return false
	}
	n, w := s.nodes[node], s.scratch
	buf := append(w.GPUFree[:0], n.GPUFree...) // w's own buffer, never n's
	*w = *n
	w.GPUFree = buf
	for _, r := range rs {
		w.Free(r.CPUMilli, r.Memory, r.GPUMilli, r.GPUs)
	}
	return w.Check(t) == placement.ReasonNone
}

// running is task j as preemption sees it, on node 0 of a one-node call.
func (s *sim) running(j int, borrowed bool) placement.Running {
	t, r := s.tasks[j].Task, &s.run[j]
	ran := s.now - r.start
	return placement.Running{
		AllocID: s.tasks[j].id, Gang: s.tasks[j].id, GPUs: r.gpus, GPUMilli: shareMilli(t), CPUMilli: t.CPUMilli, Memory: t.Memory,
		Priority: s.tasks[j].Priority, LostSeconds: ran - math.Floor(ran/s.cfg.CheckpointEvery)*s.cfg.CheckpointEvery, Borrowed: borrowed,
	}
}

// borrowed marks, as the server's runInfo does, the tasks running on
// borrowed quota: in each queue other than except with a quota, walking
// its running tasks in arrival order, those from the one that takes the
// queue past its quota on.
func (s *sim) borrowed(except string) map[int]bool {
	out := map[int]bool{}
	for name, q := range s.queues {
		quota := int64(q.QuotaGPUs) * placement.MilliPerGPU
		if name == except || q.QuotaGPUs <= 0 || s.usedQ[name].GPUMilli <= quota {
			continue
		}
		var used int64
		for _, j := range s.byQueue[name] {
			if used += s.tasks[j].Task.TotalMilli(); used > quota {
				out[j] = true
			}
		}
	}
	return out
}

// reserveOne is placement.Reserve for a one-replica gang, computed node by
// node: each node releases its own allocations in order of declared end
// until the task fits; the earliest such time wins, and among the nodes
// that fit then, the policy's best (lowest index on ties), as Reserve's
// PlaceGang would pick. Reserve rebuilds and rescans the whole cluster at
// every distinct end time, which on openb (thousands of running tasks,
// one reservation per pass) is too slow; TestReserveOneMatchesReserve
// checks the two agree. Nodes in held (other reservations') are never
// chosen, as Reserve never chooses a node that is not ready.
func reserveOne(nodes []*placement.NodeState, ending []placement.Ending, t placement.Task, p placement.Policy, held map[int]bool) (placement.Reservation, bool) {
	byNode := make([][]placement.Ending, len(nodes))
	for _, e := range ending {
		byNode[e.Node] = append(byNode[e.Node], e)
	}
	bestAt := math.Inf(1)
	type cand struct {
		node  int
		state *placement.NodeState
	}
	var cands []cand
	consider := func(i int, at float64, st *placement.NodeState) {
		if at < bestAt {
			bestAt, cands = at, cands[:0]
		}
		if at == bestAt {
			cands = append(cands, cand{i, st})
		}
	}
	for i, n := range nodes {
		if held[i] {
			continue
		}
		if n.Check(t) == placement.ReasonNone {
			consider(i, 0, n)
			continue
		}
		es := byNode[i]
		if len(es) == 0 {
			continue
		}
		slices.SortStableFunc(es, func(a, b placement.Ending) int { return cmp.Compare(a.EndsAt, b.EndsAt) })
		if es[0].EndsAt > bestAt {
			continue
		}
		w := n.Clone()
		for k, e := range es {
			if math.IsInf(e.EndsAt, 1) || e.EndsAt > bestAt {
				break
			}
			w.Free(e.CPUMilli, e.Memory, e.GPUMilli, e.GPUs)
			if k+1 < len(es) && es[k+1].EndsAt == e.EndsAt {
				continue
			}
			if w.Check(t) == placement.ReasonNone {
				consider(i, e.EndsAt, w)
				break
			}
		}
	}
	if len(cands) == 0 {
		return placement.Reservation{}, false
	}
	best, bestScore := -1, 0.0
	for _, c := range cands {
		if sc, _ := p.Score(c.state, t); best < 0 || sc > bestScore {
			best, bestScore = c.node, sc
		}
	}
	return placement.Reservation{At: bestAt, Nodes: map[int]bool{best: true}}, true
}
