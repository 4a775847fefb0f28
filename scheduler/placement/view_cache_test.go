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

// TestPropertyViewCacheMatchesFresh: passes given one ViewCache in turn
// decide exactly as passes without it, over random sequences of passes
// with the state changing between them as the leader's does: some
// placements committed and others rejected, allocations ending, a node
// going down and coming back or re-registering with other GPUs, a node
// joining, and the queue changing; with preemption and backfill.
func TestPropertyViewCacheMatchesFresh(t *testing.T) {
	f := func(seed uint64) bool {
		rng := rand.New(rand.NewPCG(seed, 17))
		var nodes []*api.Node
		newNode := func(i int) *api.Node {
			n := node(fmt.Sprintf("n%02d", i), 1+rng.IntN(8), []string{"NVIDIA H200", "NVIDIA A100-SXM4-80GB"}[rng.IntN(2)], 80+int64(rng.IntN(2))*61)
			n.Fabric = []string{"r1", "r2"}[rng.IntN(2)]
			return n
		}
		for i := 0; i < 2+rng.IntN(10); i++ {
			nodes = append(nodes, newNode(i))
		}
		var allocs []*api.Allocation
		jobN := 0
		newJobs := func(k int) []*api.Job {
			var out []*api.Job
			for range k {
				var opts []func(*spec.Job)
				gpus := rng.IntN(4)
				switch rng.IntN(6) {
				case 0:
					opts = append(opts, model("A100"))
				case 1:
					opts = append(opts, gpuMem("100Gi"))
				case 2, 3:
					opts = append(opts, share([]int{100, 250, 470, 500}[rng.IntN(4)], []string{"", "40Gi"}[rng.IntN(2)]))
					gpus = 1
				case 4:
					opts = append(opts, maxRuntime(time.Duration(1+rng.IntN(20))*time.Minute))
				}
				opts = append(opts, prio(rng.IntN(3)*50))
				out = append(out, withPrio(job(fmt.Sprintf("j%03d", jobN), 1+rng.IntN(2), gpus, opts...)))
				jobN++
			}
			return out
		}
		pending := newJobs(1 + rng.IntN(12))
		cache := &ViewCache{}
		for pass := 0; pass < 12; pass++ {
			run := map[string]RunInfo{}
			for _, a := range allocs {
				run[a.ID] = RunInfo{Priority: 50, SinceCheckpoint: float64(rng.IntN(600)), EndsIn: float64(rng.IntN(3)) * 600}
			}
			in := Input{Nodes: append([]*api.Node(nil), nodes...), Allocs: append([]*api.Allocation(nil), allocs...), Pending: pending,
				Run: run, Preempt: rng.IntN(2) == 0, Backfill: rng.IntN(2) == 0, MaxReservations: 1 + rng.IntN(2)}
			want := Place(in)
			in.Views = cache
			got := Place(in)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("seed %d pass %d: with the cache\n%+v\nwithout\n%+v", seed, pass, got, want)
				return false
			}
			// Commit some placements (a plan may be rejected at commit).
			placed := map[string]bool{}
			for _, p := range got.Placements {
				if rng.IntN(4) == 0 {
					continue
				}
				placed[p.JobID] = true
				for _, a := range p.Assignments {
					var n *api.Node
					for _, c := range nodes {
						if c.ID == a.NodeID {
							n = c
						}
					}
					al := p.Request.Allocation(fmt.Sprintf("%s-%d", p.JobID, a.Rank), n, a.GPUs)
					al.JobID, al.NodeID, al.Status, al.DesiredStatus = p.JobID, n.ID, api.AllocRunning, api.DesiredRun
					allocs = append(allocs, al)
				}
			}
			var still []*api.Job
			for _, j := range pending {
				if !placed[j.ID] {
					still = append(still, j)
				}
			}
			pending = append(still, newJobs(rng.IntN(5))...)
			// Some allocations end.
			kept := allocs[:0]
			for _, a := range allocs {
				if rng.IntN(5) != 0 {
					kept = append(kept, a)
				}
			}
			allocs = kept
			// A node's record changes; rarely, a node joins.
			switch rng.IntN(6) {
			case 0:
				i := rng.IntN(len(nodes))
				c := *nodes[i]
				if c.Status == api.NodeReady {
					c.Status = api.NodeDown
				} else {
					c.Status = api.NodeReady
				}
				nodes[i] = &c
			case 1:
				i := rng.IntN(len(nodes))
				c := *newNode(i)
				c.Fabric = nodes[i].Fabric
				nodes[i] = &c
				// Its allocations went with its old GPUs.
				kept := allocs[:0]
				for _, a := range allocs {
					if a.NodeID != c.ID {
						kept = append(kept, a)
					}
				}
				allocs = kept
			case 2:
				nodes = append(nodes, newNode(len(nodes)))
			}
		}
		return true
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 200}); err != nil {
		t.Error(err)
	}
}

// TestViewCacheDropsIdleViews: a kind of job not seen for viewIdleLimit
// passes no longer keeps a view.
func TestViewCacheDropsIdleViews(t *testing.T) {
	nodes := []*api.Node{node("a", 4, "NVIDIA H200", 141)}
	cache := &ViewCache{}
	Place(Input{Nodes: nodes, Pending: []*api.Job{job("s", 1, 1, share(250, ""))}, Views: cache})
	if len(cache.views) != 1 {
		t.Fatalf("%d views kept after one pass, want 1", len(cache.views))
	}
	for range viewIdleLimit + 1 {
		Place(Input{Nodes: nodes, Pending: []*api.Job{job("w", 1, 1)}, Views: cache})
	}
	for k := range cache.views {
		if k.share == 250 {
			t.Errorf("the 250m share's view is still kept after %d passes without one", viewIdleLimit+1)
		}
	}
	if len(cache.views) != 1 {
		t.Errorf("%d views kept, want 1 (the whole-GPU job's)", len(cache.views))
	}
}
