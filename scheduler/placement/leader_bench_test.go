package placement

import (
	"flag"
	"fmt"
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// BenchmarkPlaceLeader is the leader's whole pass (placement.Place, as the
// server calls it): 10,000 nodes x 8 H200s, 1,000 pending jobs per pass
// (single-GPU, 500m shares and 2x8 gangs mixed), per placement.
func BenchmarkPlaceLeader(b *testing.B) {
	var nodes []*api.Node
	for i := 0; i < 10000; i++ {
		nodes = append(nodes, h200(fmt.Sprintf("n%05d", i), 8))
	}
	var jobs []*api.Job
	for j := 0; j < 1000; j++ {
		switch j % 10 {
		case 0:
			jobs = append(jobs, job(fmt.Sprintf("g%04d", j), 2, 8))
		case 1, 2:
			jobs = append(jobs, job(fmt.Sprintf("s%04d", j), 1, 1, func(s *spec.Job) { s.Resources.GPUMilli = 500 }))
		default:
			jobs = append(jobs, job(fmt.Sprintf("j%04d", j), 1, 1))
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res := place(Input{Nodes: nodes, Pending: jobs}, *benchFresh); len(res.Placements) != len(jobs) {
			b.Fatalf("placed %d of %d", len(res.Placements), len(jobs))
		}
	}
	b.ReportMetric(float64(b.N*len(jobs))/b.Elapsed().Seconds(), "jobs/s")
}

// benchFresh makes BenchmarkPlaceLeader build every job's cluster anew
// (the pass before views were shared), for side-by-side figures:
// go test -run X -bench PlaceLeader -args -fresh
var benchFresh = flag.Bool("fresh", false, "BenchmarkPlaceLeader: one cluster per job (the old pass)")

// BenchmarkPlaceLeaderFull is a pass on a full cluster: 10,000 nodes x 8
// GPUs all held by single-GPU allocations with declared ends, 100 pending
// 8-GPU jobs, backfill on (the head one gets a reservation).
func BenchmarkPlaceLeaderFull(b *testing.B) {
	var nodes []*api.Node
	var allocs []*api.Allocation
	run := map[string]RunInfo{}
	for i := 0; i < 10000; i++ {
		n := h200(fmt.Sprintf("n%05d", i), 8)
		nodes = append(nodes, n)
		for g := 0; g < 8; g++ {
			a := live(fmt.Sprintf("a%05d-%d", i, g), n.ID, g)
			allocs = append(allocs, a)
			run[a.ID] = RunInfo{Priority: 50, EndsIn: float64(60 + (i*8+g)%7919)}
		}
	}
	var jobs []*api.Job
	for j := 0; j < 100; j++ {
		jobs = append(jobs, job(fmt.Sprintf("j%04d", j), 1, 8))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res := place(Input{Nodes: nodes, Allocs: allocs, Pending: jobs, Run: run, Backfill: true}, *benchFresh)
		if len(res.Placements) != 0 || len(res.Held) != 1 {
			b.Fatalf("placed %d, held %d", len(res.Placements), len(res.Held))
		}
	}
}

// BenchmarkPlaceLeaderShares is a pass whose jobs see the nodes in many
// ways, as openb's do (it has 20 share sizes): 1,000 nodes x 8 H200s, 1,000
// pending jobs (60% single-GPU, 30% shares of 19 sizes from 50m to 950m,
// 10% 2x8 gangs), interleaved so that consecutive jobs rarely share a
// view. Per placement.
func BenchmarkPlaceLeaderShares(b *testing.B) {
	var nodes []*api.Node
	for i := 0; i < 1000; i++ {
		nodes = append(nodes, h200(fmt.Sprintf("n%04d", i), 8))
	}
	var jobs []*api.Job
	for j := 0; j < 1000; j++ {
		switch j % 10 {
		case 0:
			jobs = append(jobs, job(fmt.Sprintf("g%04d", j), 2, 8))
		case 1, 2, 3:
			jobs = append(jobs, job(fmt.Sprintf("s%04d", j), 1, 1, share(50+50*((j/10*3+j%10)%19), "")))
		default:
			jobs = append(jobs, job(fmt.Sprintf("j%04d", j), 1, 1))
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res := place(Input{Nodes: nodes, Pending: jobs}, *benchFresh); len(res.Placements) != len(jobs) {
			b.Fatalf("placed %d of %d", len(res.Placements), len(jobs))
		}
	}
	b.ReportMetric(float64(b.N*len(jobs))/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkPlaceLeaderStream is the leader's passes under a job stream:
// 10,000 nodes x 8 H200s, each pass 100 new jobs (60% single-GPU, 30%
// shares of 19 sizes, 10% 8-GPU) whose placements the next pass sees
// committed, and the allocations of the pass 20 before ending. Per pass;
// "rebuilt" builds every kind of job's view anew each pass, "kept" hands
// the passes one ViewCache as the server's loop does.
func BenchmarkPlaceLeaderStream(b *testing.B) {
	var nodes []*api.Node
	byID := map[string]*api.Node{}
	for i := 0; i < 10000; i++ {
		n := h200(fmt.Sprintf("n%05d", i), 8)
		nodes = append(nodes, n)
		byID[n.ID] = n
	}
	for _, kept := range []bool{false, true} {
		name := map[bool]string{false: "rebuilt", true: "kept"}[kept]
		b.Run(name, func(b *testing.B) {
			var cache *ViewCache
			if kept {
				cache = &ViewCache{}
			}
			var allocs []*api.Allocation
			var ring [20][]*api.Allocation
			next := 0
			b.ResetTimer()
			for pass := 0; pass < b.N; pass++ {
				var jobs []*api.Job
				for k := 0; k < 100; k++ {
					j := next
					next++
					switch j % 10 {
					case 0:
						jobs = append(jobs, job(fmt.Sprintf("m%06d", j), 1, 8))
					case 1, 2, 3:
						jobs = append(jobs, job(fmt.Sprintf("s%06d", j), 1, 1, share(50+50*((j/10*3+j%10)%19), "")))
					default:
						jobs = append(jobs, job(fmt.Sprintf("j%06d", j), 1, 1))
					}
				}
				res := Place(Input{Nodes: nodes, Allocs: allocs, Pending: jobs, Views: cache})
				if len(res.Placements) != len(jobs) {
					b.Fatalf("pass %d placed %d of %d", pass, len(res.Placements), len(jobs))
				}
				slot := pass % len(ring)
				ended := map[*api.Allocation]bool{}
				for _, a := range ring[slot] {
					ended[a] = true
				}
				ring[slot] = nil
				kept := allocs[:0]
				for _, a := range allocs {
					if !ended[a] {
						kept = append(kept, a)
					}
				}
				allocs = kept
				for _, p := range res.Placements {
					for _, as := range p.Assignments {
						a := p.Request.Allocation(fmt.Sprintf("%s-%d", p.JobID, as.Rank), byID[as.NodeID], as.GPUs)
						a.JobID, a.NodeID, a.Status, a.DesiredStatus = p.JobID, as.NodeID, api.AllocRunning, api.DesiredRun
						allocs = append(allocs, a)
						ring[slot] = append(ring[slot], a)
					}
				}
			}
		})
	}
}
