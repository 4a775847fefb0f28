package placementsim

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ark-sched/ark/scheduler/placement"
	"github.com/ark-sched/ark/scheduler/sched"
)

// OverTimeSchedulers are the schedulers --over-time can run.
var OverTimeSchedulers = []string{"fifo", "fifo-ark", "ark", "ark-nopreempt", "ark-nobackfill", "ark-submission"}

// overTimeConfig is a scheduler by name: fifo is FIFO first fit (the
// baseline); fifo-ark is FIFO with Ark's packing (no queues); ark is the
// server's pass (scheduler/sched) with the server's configuration for
// these queues; ark-nopreempt and ark-nobackfill turn one of its
// features off, ark-resvN gives it N backfill reservations a pass,
// ark-submission orders by priority, then submission (the default until
// 2026-12-06).
func overTimeConfig(name string, queues []placement.Queue, checkpoint, minRuntime float64) (SimConfig, error) {
	c := SimConfig{Name: name, CheckpointEvery: checkpoint}
	cfg := schedConfig(queues, minRuntime)
	switch name {
	case "fifo":
		c.Policy = placement.FirstFitPolicy{}
		return c, nil
	case "fifo-ark":
		c.Policy = placement.NewArk()
		return c, nil
	case "ark", "ark-nopreempt", "ark-nobackfill":
		cfg.NoPreemption, cfg.NoBackfill = name == "ark-nopreempt", name == "ark-nobackfill"
		c.Sched = &cfg
		return c, nil
	case "ark-submission":
		cfg.Order = sched.OrderSubmission
		c.Sched = &cfg
		return c, nil
	}
	if rest, ok := strings.CutPrefix(name, "ark-shortestall"); ok {
		// ark-shortestall[-ageS]: OrderShortestAll, aging after S seconds.
		cfg.Order = sched.OrderShortestAll
		var err error
		if rest, err = cutAge(name, rest, &cfg.AgeAfter); err != nil {
			return c, err
		}
		if rest == "" {
			c.Sched = &cfg
			return c, nil
		}
	}
	if rest, ok := strings.CutPrefix(name, "ark-shortest"); ok {
		// ark-shortest[-ageS][-tiers][-nopreempt]: OrderShortest, aging
		// after S seconds, in tiers, without preemption.
		cfg.Order = sched.OrderShortest
		rest, cfg.NoPreemption = strings.CutSuffix(rest, "-nopreempt")
		rest, cfg.AgeTiers = strings.CutSuffix(rest, "-tiers")
		var err error
		if rest, err = cutAge(name, rest, &cfg.AgeAfter); err != nil {
			return c, err
		}
		if rest == "" {
			c.Sched = &cfg
			return c, nil
		}
	}
	if rest, ok := strings.CutPrefix(name, "ark-resv"); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 1 {
			cfg.MaxReservations = n
			c.Sched = &cfg
			return c, nil
		}
	}
	return c, fmt.Errorf("%w: unknown scheduler %q (%s, ark-resvN, ark-shortest[-ageS][-tiers][-nopreempt], ark-shortestall[-ageS])", ErrConfig, name, strings.Join(OverTimeSchedulers, ", "))
}

// runOverTime runs each scheduler on the same tasks.
func runOverTime(nodes []Node, list []Pod, o Options, progress io.Writer) ([]OverTimeResult, error) {
	gpus := 0
	for _, n := range nodes {
		gpus += n.GPUs
	}
	queues := SimQueues(gpus)
	tasks := SimTasks(list, o.TimeScale, queues, o.Overestimate, o.OverTimeSeed)
	names := o.Schedulers
	if len(names) == 0 {
		names = []string{"fifo", "ark-nopreempt", "ark"}
	}
	if names[0] != "fifo" {
		// FIFO first fit is the baseline every row is read against.
		names = append([]string{"fifo"}, slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == "fifo" })...)
	}
	var out []OverTimeResult
	for _, name := range names {
		cfg, err := overTimeConfig(name, queues, o.CheckpointEvery, o.PreemptMinRuntime)
		if err != nil {
			return nil, err
		}
		cfg.PassInterval = o.PassInterval
		r := Simulate(nodes, tasks, cfg)
		if progress != nil {
			fmt.Fprintf(progress, "over time %s: mean wait %.0fs, p95 %.0fs, util %.1f%%, %d preemptions, %d passes in %.1fs\n",
				name, r.MeanWaitSec, r.P95WaitSec, r.UtilMakespanPct, r.Preemptions, r.Passes, r.PassSeconds)
		}
		out = append(out, r)
	}
	return out, nil
}

// writeOverTime writes the over-time tables.
func (r *Report) writeOverTime(w io.Writer) {
	fmt.Fprintf(w, "\nOver time (%s x %d copies: arrivals at creation time / %g, trace durations, passes every second;\n", r.OverTimePods, r.OverTimeCopies, r.OverTimeScale)
	seed := ""
	if r.OverTimeSeed != 0 {
		// Seed 0 prints the line the recorded tables were made with.
		seed = fmt.Sprintf(" (--over-time-seed %d: queues, runtimes, ties and copy times up to %g s drawn)", r.OverTimeSeed, r.OverTimeCopyJitter)
	}
	fmt.Fprintf(w, "queues team-a/b/c by name hash%s with quotas 40/35/25%% of the GPUs; priority from qos: LS, Guaranteed high, BE low,\n", seed)
	fmt.Fprintf(w, "others normal; a checkpoint every %g s; declared runtimes over-estimate by up to %gx). fifo is FIFO first fit.\n\n", r.OverTimeCheckpoint, r.OverTimeOverestimate)
	fmt.Fprintf(w, "| scheduler | placement | done / tasks | mean wait s | p95 wait s | GPU util %% (makespan) | GPU util %% (arrivals) | makespan s | backlog cleared s | preemptions | GPU-h lost | backfilled | GPUs idle / stranded while tasks wait |\n")
	fmt.Fprintf(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, x := range r.OverTime {
		fmt.Fprintf(w, "| %s | %s | %d / %d | %.0f | %.0f | %.2f | %.1f | %.0f | %.0f | %d | %.1f | %d | %.0f / %.0f |\n", x.Scheduler, x.Policy, x.Completed, x.Tasks,
			x.MeanWaitSec, x.P95WaitSec, x.UtilMakespanPct, x.UtilPct, x.MakespanSec, x.LastStartSec, x.Preemptions, x.LostGPUHours, x.Backfilled,
			x.IdleGPUs, x.StrandedGPUs)
	}
	fmt.Fprintf(w, "\nWait by group, mean / p95 s (tasks):\n\n| scheduler |")
	groups := func(x OverTimeResult) []WaitStats {
		g := append([]WaitStats(nil), x.ByPriority...)
		g = append(g, x.BySize...)
		return append(g, x.ByQueue...)
	}
	head := groups(r.OverTime[0])
	for _, g := range head {
		fmt.Fprintf(w, " %s |", g.Name)
	}
	fmt.Fprintf(w, "\n| --- |%s\n", strings.Repeat(" ---: |", len(head)))
	for _, x := range r.OverTime {
		fmt.Fprintf(w, "| %s |", x.Scheduler)
		for _, g := range groups(x) {
			fmt.Fprintf(w, " %.0f / %.0f (%d) |", g.MeanWaitSec, g.P95WaitSec, g.Tasks)
		}
		fmt.Fprintln(w)
	}
}

// SchedulerRow is one over-time scheduler's headline figures, as
// `ark bench placement --over-time --json` prints them under
// "schedulers" (FIFO first fit first): mean and p95 wait, the mean wait
// of each priority and size class, preemptions and the GPU-hours they
// threw away.
type SchedulerRow struct {
	Name         string     `json:"name"`
	MeanWaitSec  float64    `json:"mean_wait_s"`
	P95WaitSec   float64    `json:"p95_wait_s"`
	ByClass      ClassWaits `json:"by_class"`
	Preemptions  int        `json:"preemptions"`
	GPUHoursLost float64    `json:"gpu_hours_lost"`
}

// ClassWaits are mean waits in seconds by priority class and by size
// class (a share of a GPU, one GPU, 2 GPUs or more).
type ClassWaits struct {
	High     float64 `json:"high"`
	Normal   float64 `json:"normal"`
	Low      float64 `json:"low"`
	Share    float64 `json:"share"`
	OneGPU   float64 `json:"1gpu"`
	MultiGPU float64 `json:"multi_gpu"`
}

// schedulerRows are the headline rows of over-time results.
func schedulerRows(results []OverTimeResult) []SchedulerRow {
	out := make([]SchedulerRow, 0, len(results))
	for _, r := range results {
		mean := map[string]float64{}
		for _, g := range append(append([]WaitStats(nil), r.ByPriority...), r.BySize...) {
			mean[g.Name] = g.MeanWaitSec
		}
		out = append(out, SchedulerRow{Name: r.Scheduler, MeanWaitSec: r.MeanWaitSec, P95WaitSec: r.P95WaitSec,
			ByClass: ClassWaits{High: mean["high"], Normal: mean["normal"], Low: mean["low"], Share: mean["share"],
				OneGPU: mean["1gpu"], MultiGPU: mean["multi_gpu"]},
			Preemptions: r.Preemptions, GPUHoursLost: r.LostGPUHours})
	}
	return out
}

// cutAge reads what is left of a scheduler's name: "-ageS" sets *after to
// S whole seconds and leaves nothing; anything else is left as it is.
func cutAge(name, rest string, after *time.Duration) (string, error) {
	s, ok := strings.CutPrefix(rest, "-age")
	if !ok {
		return rest, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return rest, fmt.Errorf("%w: scheduler %q: the age is whole seconds", ErrConfig, name)
	}
	*after = time.Duration(n) * time.Second
	return "", nil
}
