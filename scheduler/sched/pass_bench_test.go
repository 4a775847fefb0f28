package sched

import (
	"fmt"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/spec"
)

// BenchmarkPass is the leader's whole pass as the server runs it (fair
// order, admission, placement, ports and allocations) over a real state
// snapshot: 10,000 nodes x 8 H200s, 1,000 pending jobs (single-GPU, 500m
// shares and 2x8 gangs mixed, declaring maxRuntimes of 1 to 7 hours), per
// pass, in each queue order; compare with placement's BenchmarkPlaceLeader
// (placement alone) for what the rest costs.
func BenchmarkPass(b *testing.B) {
	c := newCluster(&testing.T{}, Config{})
	for i := range 10000 {
		c.node(fmt.Sprintf("n%05d", i), 8)
	}
	for j := range 1000 {
		rt := func(s *spec.Job) { s.MaxRuntime = spec.Duration(time.Duration(1+j%7) * time.Hour) }
		switch j % 10 {
		case 0:
			c.submit(fmt.Sprintf("g%04d", j), 2, 8, 50, rt)
		case 1, 2:
			c.submit(fmt.Sprintf("s%04d", j), 1, 1, 50, rt, func(s *spec.Job) { s.Resources.GPUMilli = 500 })
		default:
			c.submit(fmt.Sprintf("j%04d", j), 1, 1, 50, rt)
		}
	}
	v := FromSnapshot(c.snap())
	for _, order := range Orders {
		b.Run(order, func(b *testing.B) {
			cfg := c.cfg
			cfg.Order = order
			for b.Loop() {
				out := Pass(v, cfg, Input{Now: c.now, Rand: c.rng})
				if len(out.Plan.Placements) != 1000 {
					b.Fatalf("placed %d of 1000", len(out.Plan.Placements))
				}
			}
			b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}

// BenchmarkVerify is the leader's check of a 100-job plan before its
// commit, on 10,000 nodes x 8 H200s holding 5,000 running jobs: reading
// only the plan's nodes (NodeReader, the server's snapshot) against
// listing every node and allocation (a View without it).
func BenchmarkVerify(b *testing.B) {
	c := newCluster(&testing.T{}, Config{})
	for i := range 10000 {
		c.node(fmt.Sprintf("n%05d", i), 8)
	}
	for j := range 5000 {
		c.submit(fmt.Sprintf("r%04d", j), 1, 1, 50)
	}
	c.pass()
	for j := range 100 {
		c.submit(fmt.Sprintf("p%04d", j), 1, 1, 50)
	}
	out := Pass(FromSnapshot(c.snap()), c.cfg, Input{Now: c.now, Rand: c.rng})
	if len(out.Plan.Placements) != 100 {
		b.Fatalf("planned %d of 100", len(out.Plan.Placements))
	}
	for _, vw := range []struct {
		name string
		v    View
	}{{"node-reader", FromSnapshot(c.snap())}, {"listing", listOnly{FromSnapshot(c.snap())}}} {
		b.Run(vw.name, func(b *testing.B) {
			for b.Loop() {
				if _, rejected := Verify(vw.v, out.Plan); len(rejected) > 0 {
					b.Fatalf("rejected %v", rejected)
				}
			}
		})
	}
}
