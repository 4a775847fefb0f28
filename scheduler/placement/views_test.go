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

// TestPropertySharedViewsMatchFresh: Place, which shares one indexed
// cluster among jobs that see the nodes alike, decides exactly as building
// every job's cluster anew does, over random clusters and job mixes (GPU
// models, memory filters, shares with and without GPU memory, gangs,
// inference, backfill holds).
func TestPropertySharedViewsMatchFresh(t *testing.T) {
	f := func(seed uint64) bool {
		rng := rand.New(rand.NewPCG(seed, 11))
		var nodes []*api.Node
		var allocs []*api.Allocation
		run := map[string]RunInfo{}
		for i := 0; i < 2+rng.IntN(12); i++ {
			n := node(fmt.Sprintf("n%02d", i), 1+rng.IntN(8), []string{"NVIDIA H200", "NVIDIA A100-SXM4-80GB"}[rng.IntN(2)], 80+int64(rng.IntN(2))*61)
			for g := range n.GPUs {
				n.GPUs[g].NUMANode = g * 2 / len(n.GPUs)
			}
			n.Fabric = []string{"r1", "r2"}[rng.IntN(2)]
			nodes = append(nodes, n)
			for g := range n.GPUs {
				if rng.IntN(3) == 0 {
					a := live(fmt.Sprintf("x%d-%d", i, g), n.ID, g)
					allocs = append(allocs, a)
					run[a.ID] = RunInfo{Priority: 50, EndsIn: float64(rng.IntN(3)) * 600}
				}
			}
		}
		var jobs []*api.Job
		for j := 0; j < 1+rng.IntN(25); j++ {
			var opts []func(*spec.Job)
			gpus := rng.IntN(5)
			switch rng.IntN(7) {
			case 0:
				opts = append(opts, model("A100"))
			case 1:
				opts = append(opts, gpuMem("100Gi"))
			case 2:
				opts = append(opts, share([]int{250, 500}[rng.IntN(2)], []string{"", "40Gi"}[rng.IntN(2)]))
				gpus = 1
			case 3:
				opts = append(opts, func(s *spec.Job) { s.Kind = spec.KindInference })
			case 4:
				opts = append(opts, maxRuntime(time.Duration(1+rng.IntN(20))*time.Minute))
			}
			jobs = append(jobs, job(fmt.Sprintf("j%02d", j), 1+rng.IntN(3), gpus, opts...))
		}
		in := Input{Nodes: nodes, Allocs: allocs, Pending: jobs, Run: run, Backfill: rng.IntN(2) == 0, MaxReservations: 1 + rng.IntN(2)}
		got, want := place(in, false), place(in, true)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("seed %d: shared views\n%+v\nfresh clusters\n%+v", seed, got, want)
			return false
		}
		return true
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 300}); err != nil {
		t.Error(err)
	}
}
