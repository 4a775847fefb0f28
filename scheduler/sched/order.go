package sched

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// The order of a queue's pending jobs of one priority.
const (
	// OrderSubmission tries them in submission order (FIFO).
	OrderSubmission = "submission"
	// OrderShortest tries the ones with the shortest declared maxRuntime
	// first (jobs that declare none last), as Slurm's backfill and LSF's
	// SJF favour short work: a short job frees its GPUs soon for the
	// next. A job that has waited AgeAfter goes ahead of those that have
	// not, in submission order and above every priority, so long and
	// low-priority jobs are delayed, not starved.
	OrderShortest = "shortest"
	// OrderShortestAll is OrderShortest across priorities: the shortest
	// declared maxRuntime first whatever the job's priority, which then
	// acts through preemption alone; a job that has waited AgeAfter goes
	// ahead in submission order. On the openb over-time simulation, with
	// AgeAfter 300 s and a 30-minute protection, it kept every priority
	// and size class under FIFO first fit's wait and the mean 33-46%
	// below, whether the trace's copies arrive together or spread, where
	// OrderShortest with tiers left low priority up to 62% over FIFO with
	// them spread (bench/README.md).
	OrderShortestAll = "shortest-all"
)

// DefaultAgeAfter is OrderShortest's default AgeAfter.
const DefaultAgeAfter = 30 * time.Minute

// orderRanks returns each pending job's place in its queue's order
// (placement.PendingJob.Order: lower first) and the priority it is
// ordered by: its own, or with OrderShortest, once it has waited
// AgeAfter, above every priority (as Slurm's age factor lifts old jobs),
// so low-priority work is delayed by higher, not starved. Preemption
// still reads the job's own priority.
func orderRanks(cfg *Config, pending []*api.Job, now time.Time) (rank func(*api.Job) int, prio func(*api.Job) int) {
	if cfg.Order != OrderShortest && cfg.Order != OrderShortestAll {
		return func(j *api.Job) int { return int(j.CreateIndex) }, func(j *api.Job) int { return j.Priority }
	}
	age := cfg.AgeAfter
	if age <= 0 {
		age = DefaultAgeAfter
	}
	aged := func(j *api.Job) bool { return now.Sub(j.SubmitTime) >= age }
	runtime := func(j *api.Job) time.Duration {
		if d := time.Duration(j.Spec.MaxRuntime); d > 0 {
			return d
		}
		return time.Duration(1<<63 - 1)
	}
	sorted := slices.Clone(pending)
	slices.SortStableFunc(sorted, func(a, b *api.Job) int {
		if aa, ab := aged(a), aged(b); aa != ab {
			if aa {
				return -1
			}
			return 1
		} else if !aa {
			if c := cmp.Compare(runtime(a), runtime(b)); c != 0 {
				return c
			}
		}
		return cmp.Compare(a.CreateIndex, b.CreateIndex)
	})
	ranks := make(map[string]int, len(sorted))
	for i, j := range sorted {
		ranks[j.ID] = i
	}
	if cfg.Order == OrderShortestAll {
		// One rank for every job not aged: the order is the runtime's.
		return func(j *api.Job) int { return ranks[j.ID] }, func(j *api.Job) int {
			if aged(j) {
				return math.MaxInt32
			}
			return 0
		}
	}
	if !cfg.AgeTiers {
		return func(j *api.Job) int { return ranks[j.ID] }, func(j *api.Job) int {
			if aged(j) {
				return math.MaxInt32
			}
			return j.Priority
		}
	}
	// Tiers: the distinct priorities pending, lowest first; a job waiting
	// w is ordered at the priority k tiers above its own, k = w / step.
	var tiers []int
	for _, j := range pending {
		tiers = append(tiers, j.Priority)
	}
	slices.Sort(tiers)
	tiers = slices.Compact(tiers)
	step := age / time.Duration(len(tiers))
	return func(j *api.Job) int { return ranks[j.ID] }, func(j *api.Job) int {
		if aged(j) {
			return math.MaxInt32
		}
		t, _ := slices.BinarySearch(tiers, j.Priority)
		t += int(now.Sub(j.SubmitTime) / step)
		return tiers[min(t, len(tiers)-1)]
	}
}
