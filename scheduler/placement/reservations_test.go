package placement

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"testing/quick"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// TestReservations: with room for two reservations, the second job that
// fits nowhere holds nodes the first does not, and each later job may use
// a reservation's nodes only when its maxRuntime ends before that job
// starts.
func TestReservations(t *testing.T) {
	// n1: 4 of 8 GPUs held by a (declared end in 100 s), n2: 4 of 8 by b
	// (300 s), n3: all 8 by c (no declared end). h1 and h2 need a whole
	// node: h1 gets n1 at 100 s; h2, with n1 held, n2 at 300 s.
	nodes := []*api.Node{h200("n1", 8), h200("n2", 8), h200("n3", 8)}
	allocs := []*api.Allocation{
		gangAlloc("a", 0, "id-n1", 0, 1, 2, 3),
		gangAlloc("b", 0, "id-n2", 0, 1, 2, 3),
		gangAlloc("c", 0, "id-n3", 0, 1, 2, 3, 4, 5, 6, 7),
	}
	pending := []*api.Job{
		job("h1", 1, 8),
		job("h2", 1, 8),
		job("long", 1, 4, maxRuntime(500*time.Second)),
		job("mid", 1, 4, maxRuntime(200*time.Second)),
		job("nolimit", 1, 4),
	}
	tests := []struct {
		name    string
		max     int
		bEnds   float64
		placed  map[string]string
		pending map[string]string
		held    []Hold
	}{
		{
			name: "one reservation: the long job takes the second big job's room", max: 1, bEnds: 300,
			placed: map[string]string{"long": "0@n2[4 5 6 7]"},
			pending: map[string]string{
				"h2":      "free",
				"mid":     "n1 held for job h1 for about 100s",
				"nolimit": "n1 held for job h1 for about 100s",
			},
			held: []Hold{{JobID: "h1", Nodes: []string{"id-n1"}, In: 100}},
		},
		{
			name: "two reservations on disjoint nodes", max: 2, bEnds: 300,
			placed: map[string]string{"mid": "0@n2[4 5 6 7]"},
			pending: map[string]string{
				"long":    "n1 held for job h1 for about 100s|n2 held for job h2 for about 5m",
				"nolimit": "n1 held for job h1 for about 100s|n2 held for job h2 for about 5m",
			},
			held: []Hold{{JobID: "h1", Nodes: []string{"id-n1"}, In: 100}, {JobID: "h2", Nodes: []string{"id-n2"}, In: 300}},
		},
		{
			name: "more room than jobs that fit nowhere", max: 8, bEnds: 300,
			placed: map[string]string{"mid": "0@n2[4 5 6 7]"},
			pending: map[string]string{
				"long":    "n1 held for job h1|n2 held for job h2",
				"nolimit": "n1 held for job h1|n2 held for job h2",
			},
			held: []Hold{{JobID: "h1", Nodes: []string{"id-n1"}, In: 100}, {JobID: "h2", Nodes: []string{"id-n2"}, In: 300}},
		},
		{
			name: "a further reservation with no known time holds nothing", max: 2, bEnds: inf,
			placed: map[string]string{"long": "0@n2[4 5 6 7]"},
			pending: map[string]string{
				"h2":      "free",
				"mid":     "n1 held for job h1 for about 100s",
				"nolimit": "n1 held for job h1 for about 100s",
			},
			held: []Hold{{JobID: "h1", Nodes: []string{"id-n1"}, In: 100}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Nodes: nodes, Allocs: allocs, Pending: pending, Backfill: true, MaxReservations: tt.max,
				Run: map[string]RunInfo{"a-0": run(50, 0, 100), "b-0": run(50, 0, tt.bEnds), "c-0": run(50, 0, inf)}}
			res := Place(in)
			checkResult(t, res, tt.placed, tt.pending)
			if !reflect.DeepEqual(res.Held, tt.held) {
				t.Errorf("held %+v, want %+v", res.Held, tt.held)
			}
		})
	}
}

// TestPropertyReservations: over random clusters whose allocations end at
// random declared times (some never) and random jobs with and without a
// maxRuntime, with up to four reservations a pass: the plan never
// over-commits; reservations never share a node and their jobs stay
// pending; a job after a held one in the pass lands on its nodes only if
// its maxRuntime ends by the reservation's time; and at that time, once
// everything declared to end by then has ended, the held job still fits
// on its nodes (backfill never delays it).
func TestPropertyReservations(t *testing.T) {
	multi := 0
	f := func(seed uint64) bool {
		rng := rand.New(rand.NewPCG(seed, 17))
		var nodes []*api.Node
		var allocs []*api.Allocation
		runInfo := map[string]RunInfo{}
		for i := range 2 + rng.IntN(6) {
			n := h200(fmt.Sprintf("n%d", i), []int{2, 4, 8}[rng.IntN(3)])
			nodes = append(nodes, n)
			for g := range len(n.GPUs) {
				if rng.IntN(4) == 0 {
					continue
				}
				a := gangAlloc(fmt.Sprintf("r%d-%d", i, g), 0, n.ID, g)
				allocs = append(allocs, a)
				ends := float64(10 * (1 + rng.IntN(60)))
				if rng.IntN(6) == 0 {
					ends = inf
				}
				runInfo[a.ID] = run(0, 0, ends)
			}
		}
		var jobs []*api.Job
		byID := map[string]*api.Job{}
		for j := range 1 + rng.IntN(14) {
			var opts []func(*spec.Job)
			if rng.IntN(4) != 0 {
				opts = append(opts, maxRuntime(time.Duration(10*(1+rng.IntN(80)))*time.Second))
			}
			if rng.IntN(4) == 0 {
				opts = append(opts, sameNode)
			}
			jb := job(fmt.Sprintf("j%02d", j), 1+rng.IntN(3), []int{1, 1, 2, 4, 8}[rng.IntN(5)], opts...)
			jobs = append(jobs, jb)
			byID[jb.ID] = jb
		}
		maxRes := rng.IntN(5)
		res := Place(Input{Nodes: nodes, Allocs: allocs, Pending: jobs, Run: runInfo, Backfill: true, MaxReservations: maxRes})
		verifyResult(t, nodes, allocs, res)
		if len(res.Held) > max(maxRes, 1) {
			t.Errorf("seed %d: %d reservations, at most %d allowed", seed, len(res.Held), max(maxRes, 1))
			return false
		}
		if len(res.Held) > 1 {
			multi++
		}
		order := map[string]int{}
		for k, j := range jobs {
			order[j.ID] = k
		}
		owner := map[string]string{} // node ID -> held job
		for k, h := range res.Held {
			if _, ok := res.Unplaced[h.JobID]; !ok {
				t.Errorf("seed %d: held job %s is not pending", seed, h.JobID)
				return false
			}
			if k > 0 && h.In <= 0 {
				t.Errorf("seed %d: reservation %d (%s) has no known time", seed, k, h.JobID)
				return false
			}
			for _, n := range h.Nodes {
				if o, ok := owner[n]; ok {
					t.Errorf("seed %d: node %s held for both %s and %s", seed, n, o, h.JobID)
					return false
				}
				owner[n] = h.JobID
			}
		}
		for _, h := range res.Held {
			held := map[string]bool{}
			for _, n := range h.Nodes {
				held[n] = true
			}
			// Placed after the held job, on its nodes: must end in time.
			for _, p := range res.Placements {
				if order[p.JobID] < order[h.JobID] {
					continue
				}
				rt := time.Duration(byID[p.JobID].Spec.MaxRuntime).Seconds()
				for _, a := range p.Assignments {
					if held[a.NodeID] && (h.In <= 0 || rt <= 0 || rt > h.In) {
						t.Errorf("seed %d: job %s (maxRuntime %vs) placed on %s held for %s for %vs", seed, p.JobID, rt, a.NodeID, h.JobID, h.In)
						return false
					}
				}
			}
			if h.In <= 0 {
				continue
			}
			// At h.In: what is left of the allocations and the plan.
			var left []*api.Allocation
			for _, a := range allocs {
				if runInfo[a.ID].EndsIn > h.In {
					left = append(left, a)
				}
			}
			for _, p := range res.Placements {
				if rt := time.Duration(byID[p.JobID].Spec.MaxRuntime).Seconds(); rt > 0 && rt <= h.In {
					continue
				}
				for _, a := range p.Assignments {
					al := p.Request.Allocation(p.JobID, nodeByID(nodes, a.NodeID), a.GPUs)
					al.NodeID = a.NodeID
					left = append(left, al)
				}
			}
			jb := byID[h.JobID]
			req, err := RequestOf(jb)
			if err != nil {
				t.Fatal(err)
			}
			states, _ := jobStates(nodes, NodeUsage(left), req)
			for i, n := range nodes {
				if !held[n.ID] {
					states[i].NotReady = true
				}
			}
			g := Gang{Replicas: max(jb.Spec.Replicas, 1), Task: taskOf(req), SameNode: req.SameNode}
			if _, ok := NewNodeIndex(states).PlaceGang(g, FirstFitPolicy{}, nil); !ok {
				t.Errorf("seed %d: held job %s no longer fits on %v at %vs", seed, h.JobID, h.Nodes, h.In)
				return false
			}
		}
		return true
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 400}); err != nil {
		t.Fatal(err)
	}
	if multi == 0 {
		t.Fatal("no run held more than one reservation: the property tested nothing new")
	}
}
