package placementsim

import (
	"math/rand/v2"
	"testing"

	"github.com/ark-sched/ark/scheduler/placement"
)

func BenchmarkSpeed(b *testing.B) {
	for i := 0; i < b.N; i++ {
		r, err := Speed(10000, 20000, 2000, 1)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.SinglePerSec, "single/s")
		b.ReportMetric(r.DiversePerSec, "diverse/s")
		b.ReportMetric(r.GangPerSec, "gang/s")
	}
}

// BenchmarkPlaceSingle is one single-GPU placement (Observe, Select,
// Place) with Ark's policy on 10,000 nodes prefilled to half, CPU and
// memory in proportion to the GPUs: few node states.
func BenchmarkPlaceSingle(b *testing.B) { benchSingles(b, false) }

// BenchmarkPlaceSingleDiverse is the same with CPU and memory drawn per
// task: thousands of node states, the hard case for the class index.
func BenchmarkPlaceSingleDiverse(b *testing.B) { benchSingles(b, true) }

func benchSingles(b *testing.B, diverse bool) {
	rng := rand.New(rand.NewPCG(1, 1))
	draw := func(single bool) placement.Task {
		t := synthTask(rng, single)
		if diverse {
			t = diverseTask(rng, t)
		}
		return t
	}
	// A fresh prefilled cluster every 20,000 placements (untimed), so the
	// cluster stays between half and about three quarters full.
	var c *placement.NodeIndex
	var ark *placement.Ark
	tasks := make([]placement.Task, 20000)
	k := len(tasks)
	placed := 0
	for i := 0; i < b.N; i++ {
		if k == len(tasks) {
			b.StopTimer()
			c, ark = prefill(10000, 2, func() placement.Task { return draw(false) })
			for j := range tasks {
				tasks[j] = draw(true)
			}
			k = 0
			b.StartTimer()
		}
		t := tasks[k]
		k++
		ark.Observe(t)
		if n, g := c.Select(t, ark, nil); n >= 0 {
			c.Take(n, t, g)
			placed++
		}
	}
	if placed < b.N*9/10 {
		b.Fatalf("placed %d of %d", placed, b.N)
	}
	b.ReportMetric(float64(c.Classes()), "states")
}

// BenchmarkPlaceGang is one gang of 2-8 replicas of 8 GPUs on 10,000
// nodes prefilled to a fifth, the oldest gangs finishing to keep room.
func BenchmarkPlaceGang(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	c, ark := prefill(10000, 5, func() placement.Task { return synthTask(rng, false) })
	run := &gangRun{c: c, ark: ark, keep: 1000}
	placed := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ok, err := run.place(gang8(2 + rng.IntN(7)))
		if err != nil {
			b.Fatal(err)
		}
		if ok {
			placed++
		}
	}
	if placed < b.N*9/10 {
		b.Fatalf("placed %d of %d", placed, b.N)
	}
}
