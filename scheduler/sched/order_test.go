package sched

import (
	"math"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// TestOrderRanks: OrderShortest tries short declared runtimes first, jobs
// declaring none last, and a job that waited AgeAfter ahead of the rest
// in submission order; OrderSubmission keeps submission order;
// OrderShortestAll is the default.
func TestOrderRanks(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	job := func(id string, idx uint64, runtime time.Duration, waited time.Duration) *api.Job {
		return &api.Job{ID: id, CreateIndex: idx, SubmitTime: now.Add(-waited), Spec: spec.Job{MaxRuntime: spec.Duration(runtime)}}
	}
	jobs := []*api.Job{
		job("long", 1, 10*time.Hour, time.Minute),
		job("none", 2, 0, time.Minute),
		job("short", 3, time.Minute, time.Minute),
		job("old-long", 4, 20*time.Hour, time.Hour),
		job("mid", 5, time.Hour, time.Minute),
		job("old-none", 6, 0, 2*time.Hour),
	}
	for _, tc := range []struct {
		cfg  Config
		want []string
	}{
		{Config{}, []string{"old-long", "old-none", "short", "mid", "long", "none"}},
		{Config{Order: OrderSubmission}, []string{"long", "none", "short", "old-long", "mid", "old-none"}},
		{Config{Order: OrderShortest}, []string{"old-long", "old-none", "short", "mid", "long", "none"}},
		{Config{Order: OrderShortest, AgeAfter: 3 * time.Hour}, []string{"short", "mid", "long", "old-long", "none", "old-none"}},
		{Config{Order: OrderShortestAll}, []string{"old-long", "old-none", "short", "mid", "long", "none"}},
	} {
		rank, _ := orderRanks(&tc.cfg, jobs, now)
		got := slices.Clone(jobs)
		sort.SliceStable(got, func(a, b int) bool { return rank(got[a]) < rank(got[b]) })
		var ids []string
		for _, j := range got {
			ids = append(ids, j.ID)
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.cfg, ids, tc.want)
		}
	}
}

// TestAgedOrderedAbovePriority: with OrderShortest a job that waited
// AgeAfter is ordered above every priority; otherwise its own counts
// (OrderShortestAll: none does).
func TestAgedOrderedAbovePriority(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	old := &api.Job{ID: "old", Priority: 10, SubmitTime: now.Add(-time.Hour)}
	young := &api.Job{ID: "young", Priority: 90, SubmitTime: now.Add(-time.Minute)}
	jobs := []*api.Job{old, young}
	for _, tc := range []struct {
		cfg          Config
		oldP, youngP int
	}{
		{Config{}, math.MaxInt32, 0}, // OrderShortestAll
		{Config{Order: OrderSubmission}, 10, 90},
		{Config{Order: OrderShortest}, math.MaxInt32, 90},
		{Config{Order: OrderShortest, AgeAfter: 2 * time.Hour}, 10, 90},
		// Across priorities: every job not aged is ordered alike.
		{Config{Order: OrderShortestAll}, math.MaxInt32, 0},
		{Config{Order: OrderShortestAll, AgeAfter: 2 * time.Hour}, 0, 0},
	} {
		_, prio := orderRanks(&tc.cfg, jobs, now)
		if prio(old) != tc.oldP || prio(young) != tc.youngP {
			t.Errorf("%+v: old %d young %d, want %d %d", tc.cfg, prio(old), prio(young), tc.oldP, tc.youngP)
		}
	}
}

// TestHoldingPreemptorGoesAhead: under the orders that rank by runtime, a
// preemptor whose hold is live goes ahead of every job not aged, whatever
// its runtime, so a shorter job of its queue cannot take the quota its
// victims gave back (TestQueuePreemption's t2 and t3 through the server);
// once the hold has passed, it is ranked by runtime again.
func TestHoldingPreemptorGoesAhead(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	later, earlier := now.Add(time.Minute), now.Add(-time.Second)
	short := &api.Job{ID: "short", CreateIndex: 1, Priority: 10, SubmitTime: now, Spec: spec.Job{MaxRuntime: spec.Duration(time.Minute)}}
	for _, tc := range []struct {
		cfg   Config
		until *time.Time
		ahead bool
	}{
		{Config{}, &later, true},
		{Config{Order: OrderShortest}, &later, true},
		{Config{}, &earlier, false},
		{Config{}, nil, false},
	} {
		holder := &api.Job{ID: "holder", CreateIndex: 2, Priority: 90, SubmitTime: now, HeldNodes: []string{"n1"}, HoldUntil: tc.until}
		rank, prio := orderRanks(&tc.cfg, []*api.Job{short, holder}, now)
		if got := rank(holder) < rank(short) && prio(holder) == math.MaxInt32; got != tc.ahead {
			t.Errorf("%+v, hold until %v: holder rank %d prio %d, short rank %d: ahead %v, want %v", tc.cfg, tc.until, rank(holder), prio(holder), rank(short), got, tc.ahead)
		}
	}
}

// TestDefaultAgeAfter: AgeAfter 0 is the order's default, 5 minutes for
// OrderShortestAll (named or by default), 30 for OrderShortest; a job
// is aged from that wait on, not a second before.
func TestDefaultAgeAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		cfg  Config
		want time.Duration
	}{
		{Config{}, 5 * time.Minute},
		{Config{Order: OrderShortestAll}, 5 * time.Minute},
		{Config{Order: OrderShortest}, 30 * time.Minute},
		{Config{AgeAfter: time.Hour}, time.Hour},
		{Config{Order: OrderShortest, AgeAfter: time.Minute}, time.Minute},
	} {
		if got := tc.cfg.ageAfter(); got != tc.want {
			t.Errorf("%+v: ages after %s, want %s", tc.cfg, got, tc.want)
		}
		before := &api.Job{ID: "before", SubmitTime: now.Add(-tc.want + time.Second)}
		at := &api.Job{ID: "at", SubmitTime: now.Add(-tc.want)}
		_, prio := orderRanks(&tc.cfg, []*api.Job{before, at}, now)
		if prio(before) == math.MaxInt32 || prio(at) != math.MaxInt32 {
			t.Errorf("%+v: waited a second less than %s: ordered at %d; waited it: %d", tc.cfg, tc.want, prio(before), prio(at))
		}
	}
}

// TestAgeTiers: with AgeTiers a waiting job climbs one pending priority
// every AgeAfter/(priorities pending) (three here: 20 minutes of 1 hour),
// and goes above all at AgeAfter.
func TestAgeTiers(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	job := func(prio int, waited time.Duration) *api.Job {
		return &api.Job{ID: "j", Priority: prio, SubmitTime: now.Add(-waited)}
	}
	pending := []*api.Job{job(10, 0), job(50, 0), job(90, 0), job(50, 0)}
	cfg := Config{Order: OrderShortest, AgeAfter: time.Hour, AgeTiers: true}
	for _, tc := range []struct {
		j    *api.Job
		want int
	}{
		{job(10, 0), 10},
		{job(10, 19*time.Minute), 10},
		{job(10, 20*time.Minute), 50},
		{job(10, 45*time.Minute), 90},
		{job(10, time.Hour), math.MaxInt32},
		{job(50, 25*time.Minute), 90},
		{job(90, 50*time.Minute), 90},
		{job(30, 0), 50}, // not among the pending: ordered at the next one up
	} {
		_, prio := orderRanks(&cfg, pending, now)
		if got := prio(tc.j); got != tc.want {
			t.Errorf("priority %d, waited %s: ordered at %d, want %d", tc.j.Priority, now.Sub(tc.j.SubmitTime), got, tc.want)
		}
	}
}
