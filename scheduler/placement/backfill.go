package placement

import (
	"math"
	"sort"
)

// Ending is a live allocation with when it is expected to end, in seconds
// from now (from the job's declared maxRuntime; +Inf when unknown). Times
// are inputs: placement reads no clock.
type Ending struct {
	Node     int
	GPUs     []int
	GPUMilli int64 // per GPU for a share; 0 for whole GPUs
	CPUMilli int64
	Memory   int64
	EndsAt   float64
}

// Reservation holds room for the head-of-line gang: the earliest time it
// fits if allocations end as declared, and the nodes it would take then.
type Reservation struct {
	At    float64
	Nodes map[int]bool
}

// Reserve computes the head-of-line gang's reservation: it releases the
// live allocations in order of declared end and returns the first time
// the whole gang fits (0: it fits now), or ok false when it never fits
// even once every allocation with a known end is gone. nodes are not
// changed.
func Reserve(nodes []*NodeState, ending []Ending, g Gang, p Policy) (Reservation, bool) {
	clone := func() []*NodeState {
		out := make([]*NodeState, len(nodes))
		for i, n := range nodes {
			out[i] = n.Clone()
		}
		return out
	}
	work := clone()
	try := func(at float64) (Reservation, bool) {
		trial := make([]*NodeState, len(work))
		for i, n := range work {
			trial[i] = n.Clone()
		}
		slots, ok := NewNodeIndex(trial).PlaceGang(g, p, nil)
		if !ok {
			return Reservation{}, false
		}
		r := Reservation{At: at, Nodes: map[int]bool{}}
		for _, s := range slots {
			r.Nodes[s.Node] = true
		}
		return r, true
	}
	if r, ok := try(0); ok {
		return r, true
	}
	order := append([]Ending(nil), ending...)
	sort.SliceStable(order, func(i, k int) bool { return order[i].EndsAt < order[k].EndsAt })
	// A release changes only its node. While no released node can take
	// one replica, what the gang can use is what it could before, so the
	// whole planner need not run again: this keeps a reservation at one
	// index build per instant that matters, not per declared end.
	changed := false
	for i, e := range order {
		if math.IsInf(e.EndsAt, 1) {
			break
		}
		work[e.Node].Free(e.CPUMilli, e.Memory, e.GPUMilli, e.GPUs)
		changed = changed || work[e.Node].Check(g.Task) == RuleNone
		if i+1 < len(order) && order[i+1].EndsAt == e.EndsAt {
			continue // release everything ending at the same instant first
		}
		if !changed {
			continue
		}
		changed = false
		if r, ok := try(e.EndsAt); ok {
			return r, true
		}
	}
	return Reservation{}, false
}

// CanBackfill says whether a job may start now on slots while the
// reservation holds: it must stay off the reserved nodes, or declare a
// runtime (seconds, 0 when unknown) that ends by the reservation's time,
// so the head-of-line gang is never delayed (no starvation of big gangs).
func CanBackfill(r Reservation, slots []Slot, runtime float64) bool {
	if runtime > 0 && runtime <= r.At {
		return true
	}
	for _, s := range slots {
		if r.Nodes[s.Node] {
			return false
		}
	}
	return true
}
