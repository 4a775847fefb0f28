package sched

import (
	"slices"
	"strings"
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/scheduler/state"
)

// alloc is one rank of a hand-made plan on node id-NODE.
func alloc(job string, rank int, node string, gpus []int, milli, gpuMem int64) *api.Allocation {
	return &api.Allocation{ID: job + "-" + string(rune('0'+rank)), JobID: job, NodeID: "id-" + node, Node: node, Rank: rank,
		GPUs: gpus, GPUMilli: milli, GPUMemoryBytes: gpuMem, CPUMilli: 1000, MemoryBytes: gi}
}

// TestVerify: the leader's check before the commit holds the placement
// rules the FSM no longer has (what a rank holds is what its job asks;
// GPU model and memory; shares' memory), on top of the arithmetic both
// check. A rejected placement is dropped whole; the rest commits.
func TestVerify(t *testing.T) {
	share := func(milli int, mem string) func(*spec.Job) {
		return func(s *spec.Job) { s.Resources.GPUMilli, s.Resources.GPUMemory = milli, spec.Quantity(mem) }
	}
	model := func(m string) func(*spec.Job) { return func(s *spec.Job) { s.Resources.GPUModel = m } }
	prop := func(milli int64) int64 { return 141 * gi * milli / 1000 }
	cases := []struct {
		name   string
		submit func(c *cluster)
		plan   []state.JobPlacement
		want   string // "" when it is kept
	}{
		{"fits", func(c *cluster) { c.submit("a", 2, 1, 50) },
			[]state.JobPlacement{{JobID: "a", Allocs: []*api.Allocation{alloc("a", 0, "n1", []int{0}, 0, 0), alloc("a", 1, "n1", []int{1}, 0, 0)}}}, ""},
		{"resources differ from the job", func(c *cluster) { c.submit("a", 2, 1, 50) },
			[]state.JobPlacement{{JobID: "a", Allocs: []*api.Allocation{alloc("a", 0, "n1", []int{0}, 0, 0), func() *api.Allocation {
				a := alloc("a", 1, "n1", []int{1}, 0, 0)
				a.MemoryBytes = 1
				return a
			}()}}}, "rank 1 asks for other resources than the job"},
		{"a share booked without its memory", func(c *cluster) { c.submit("a", 1, 1, 50, share(600, "")) },
			[]state.JobPlacement{{JobID: "a", Allocs: []*api.Allocation{alloc("a", 0, "n1", []int{0}, 600, 0)}}},
			"allocation holds 600m of GPU 0, job asks for 600m with 84.6Gi"},
		{"a share that differs from the ask", func(c *cluster) { c.submit("a", 1, 1, 50, share(100, "50Gi")) },
			[]state.JobPlacement{{JobID: "a", Allocs: []*api.Allocation{alloc("a", 0, "n1", []int{0}, 300, 50*gi)}}},
			"allocation holds 300m with 50Gi of each GPU, job asks for 100m with 50Gi"},
		{"a share at its proportion", func(c *cluster) { c.submit("a", 1, 1, 50, share(600, "")) },
			[]state.JobPlacement{{JobID: "a", Allocs: []*api.Allocation{alloc("a", 0, "n1", []int{0}, 600, prop(600))}}}, ""},
		{"wrong GPU model", func(c *cluster) { c.submit("a", 1, 1, 50, model("A100")) },
			[]state.JobPlacement{{JobID: "a", Allocs: []*api.Allocation{alloc("a", 0, "n1", []int{0}, 0, 0)}}}, `model "NVIDIA H200" is not "A100"`},
		{"GPU count", func(c *cluster) { c.submit("a", 1, 2, 50) },
			[]state.JobPlacement{{JobID: "a", Allocs: []*api.Allocation{alloc("a", 0, "n1", []int{0}, 0, 0)}}}, "allocation holds 1 GPUs, job asks for 2"},
		{"no such job", func(c *cluster) {},
			[]state.JobPlacement{{JobID: "a", Allocs: []*api.Allocation{alloc("a", 0, "n1", []int{0}, 0, 0)}}}, "job no longer exists"},
		{"no such node", func(c *cluster) { c.submit("a", 1, 1, 50) },
			[]state.JobPlacement{{JobID: "a", Allocs: []*api.Allocation{alloc("a", 0, "n9", []int{0}, 0, 0)}}}, "rank 0: node id-n9 does not exist"},
		{"a GPU a committed allocation holds", func(c *cluster) {
			c.submit("x", 1, 1, 50)
			c.pass() // x takes GPU 0 of n1
			c.submit("a", 1, 1, 50)
		}, []state.JobPlacement{{JobID: "a", Allocs: []*api.Allocation{alloc("a", 0, "n1", []int{0}, 0, 0)}}}, "GPU 0 of node n1 is held by allocation"},
		{"a GPU an earlier placement of the plan takes", func(c *cluster) { c.submit("z", 1, 1, 50); c.submit("a", 1, 1, 50) },
			[]state.JobPlacement{{JobID: "z", Allocs: []*api.Allocation{alloc("z", 0, "n1", []int{1}, 0, 0)}},
				{JobID: "a", Allocs: []*api.Allocation{alloc("a", 0, "n1", []int{1}, 0, 0)}}}, "GPU 1 of node n1 is held by allocation z-0"},
	}
	// Every case reads the snapshot both ways: node by node (NodeReader,
	// the server's) and by listing the cluster (a View without it).
	views := []struct {
		name string
		of   func(*state.Snapshot) View
	}{
		{"node reader", FromSnapshot},
		{"listing", func(s *state.Snapshot) View { return listOnly{FromSnapshot(s)} }},
	}
	for _, tc := range cases {
		for _, vw := range views {
			t.Run(tc.name+"/"+vw.name, func(t *testing.T) {
				c := newCluster(t, Config{})
				c.node("n1", 2)
				tc.submit(c)
				// b (CPU only) always fits and must survive another
				// placement's rejection.
				c.submit("b", 1, 0, 50)
				plan := state.Plan{Placements: append(slices.Clone(tc.plan), state.JobPlacement{JobID: "b", Allocs: []*api.Allocation{alloc("b", 0, "n1", nil, 0, 0)}})}
				got, rejected := Verify(vw.of(c.snap()), plan)
				last := tc.plan[len(tc.plan)-1].JobID
				switch {
				case tc.want == "" && len(rejected) > 0:
					t.Fatalf("rejected %v", rejected)
				case tc.want != "" && !strings.Contains(rejected[last], tc.want):
					t.Fatalf("rejected %q, want %q (all: %v)", rejected[last], tc.want, rejected)
				case tc.want != "" && len(rejected) != 1:
					t.Fatalf("rejected %v, want only %s", rejected, last)
				}
				if final := got.Placements[len(got.Placements)-1]; final.JobID != "b" {
					t.Fatalf("the placement that fits was dropped: %+v", got.Placements)
				}
			})
		}
	}
}

// listOnly hides a View's optional capabilities.
type listOnly struct{ View }
