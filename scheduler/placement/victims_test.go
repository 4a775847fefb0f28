package placement

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
)

// keptByRank is the victim rule as written per allocation (before the
// per-pass gangs): the reference keeps must match, over random gangs of
// mixed queues, priorities, borrowed, protected and stopping ranks.
func keptByRank(in *Input, job *api.Job, reclaim bool, need int64) map[string]bool {
	keep := map[string]bool{}
	for _, id := range job.Preempting {
		keep[id] = true
	}
	for _, a := range in.Allocs {
		if a.Terminal() || a.JobID == job.ID {
			continue
		}
		info, ok := in.Run[a.ID]
		switch {
		case !ok, info.Protected, a.DesiredStatus == api.DesiredStop:
			keep[a.JobID] = true
		case need > 0 && (info.Queue != job.Queue || info.Priority >= job.Priority):
			keep[a.JobID] = true
		case info.Priority >= job.Priority && !(info.Borrowed && reclaim && need == 0):
			keep[a.JobID] = true
		}
	}
	return keep
}

func TestVictimGangsMatchRanks(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	for round := range 300 {
		in := &Input{Run: map[string]RunInfo{}}
		for g := range 1 + rng.IntN(12) {
			for r := range 1 + rng.IntN(3) {
				a := &api.Allocation{ID: fmt.Sprintf("g%d-%d", g, r), JobID: fmt.Sprintf("g%d", g), Status: api.AllocRunning}
				if rng.IntN(10) == 0 {
					a.DesiredStatus = api.DesiredStop
				}
				if rng.IntN(12) == 0 {
					a.Status = api.AllocFailed
				}
				in.Allocs = append(in.Allocs, a)
				if rng.IntN(15) == 0 {
					continue // no run info
				}
				in.Run[a.ID] = RunInfo{Priority: []int{10, 50, 100}[rng.IntN(3)], Queue: []string{"a", "b"}[rng.IntN(2)],
					Borrowed: rng.IntN(3) == 0, Protected: rng.IntN(8) == 0}
			}
		}
		p := &preempter{in: in, taken: map[string]bool{}}
		for range 5 {
			job := &api.Job{ID: fmt.Sprintf("g%d", rng.IntN(14)), Queue: []string{"a", "b"}[rng.IntN(2)], Priority: []int{10, 50, 100}[rng.IntN(3)]}
			if rng.IntN(4) == 0 {
				job.Preempting = []string{fmt.Sprintf("g%d", rng.IntN(12))}
			}
			reclaim, need := rng.IntN(2) == 0, int64(rng.IntN(2)*500)
			want := keptByRank(in, job, reclaim, need)
			p.victims()
			p.search++
			for _, id := range job.Preempting {
				if g := p.gangs[id]; g != nil {
					g.kept = p.search
				}
			}
			var got, exp []string
			for id, g := range p.gangs {
				if id != job.ID && (g.kept == p.search || g.keeps(job, reclaim, need)) {
					got = append(got, id)
				}
			}
			for id := range want {
				if _, live := p.gangs[id]; live && id != job.ID {
					exp = append(exp, id)
				}
			}
			slices.Sort(got)
			slices.Sort(exp)
			if !slices.Equal(got, exp) {
				t.Fatalf("round %d job %+v reclaim %v need %d: gangs keep %v, ranks keep %v", round, job, reclaim, need, got, exp)
			}
		}
	}
}
