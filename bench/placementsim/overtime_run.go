package placementsim

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ark-sched/ark/scheduler/placement"
)

// OverTimeSchedulers are the schedulers --over-time can run.
var OverTimeSchedulers = []string{"fifo", "fifo-ark", "ark", "ark-nopreempt", "ark-nobackfill"}

// overTimeConfig is a scheduler by name: fifo is FIFO first fit (the
// baseline); fifo-ark is FIFO with Ark's packing (no queues); ark is Ark's
// scheduler (fair order, quotas, preemption, backfill, Ark's packing);
// ark-nopreempt and ark-nobackfill drop one of its features.
func overTimeConfig(name string, queues []placement.Queue, checkpoint, minRuntime float64) (SimConfig, error) {
	c := SimConfig{Name: name, CheckpointEvery: checkpoint, MinRuntime: minRuntime}
	switch name {
	case "fifo":
		c.Policy = placement.FirstFitPolicy{}
		return c, nil
	case "fifo-ark":
		c.Policy = placement.NewArk()
		return c, nil
	case "ark", "ark-nopreempt", "ark-nobackfill":
		c.Policy, c.Queues = placement.NewArk(), queues
		c.Preempt, c.Backfill = name != "ark-nopreempt", name != "ark-nobackfill"
		return c, nil
	}
	// ark-resvN, ark-bigN, ark-sizeN: Ark with up to N reservations a pass
	// for the first N tasks that cannot start, for the first and then only
	// multi-GPU tasks, or for the biggest of them (see SimConfig).
	for _, v := range []string{"ark-resv", "ark-big", "ark-size"} {
		if rest, ok := strings.CutPrefix(name, v); ok {
			n, err := strconv.Atoi(rest)
			if err != nil || n < 1 {
				break
			}
			c.Policy, c.Queues, c.Preempt, c.Backfill = placement.NewArk(), queues, true, true
			c.Reservations, c.ReserveBig, c.ReserveBySize = n, v == "ark-big", v == "ark-size"
			return c, nil
		}
	}
	return c, fmt.Errorf("%w: unknown scheduler %q (%s, ark-resvN, ark-bigN, ark-sizeN)", ErrConfig, name, strings.Join(OverTimeSchedulers, ", "))
}

// runOverTime runs each scheduler on the same tasks.
func runOverTime(nodes []Node, list []Pod, o Options, progress io.Writer) ([]OverTimeResult, error) {
	gpus := 0
	for _, n := range nodes {
		gpus += n.GPUs
	}
	queues := SimQueues(gpus)
	tasks := SimTasks(list, o.TimeScale, queues, o.Overestimate)
	names := o.Schedulers
	if len(names) == 0 {
		names = []string{"fifo", "ark-nopreempt", "ark"}
	}
	var out []OverTimeResult
	for _, name := range names {
		cfg, err := overTimeConfig(name, queues, o.CheckpointEvery, o.PreemptMinRuntime)
		if err != nil {
			return nil, err
		}
		r := Simulate(nodes, tasks, cfg)
		if progress != nil {
			fmt.Fprintf(progress, "over time %s: mean wait %.0fs, p95 %.0fs, util %.1f%%, %d preemptions\n", name, r.MeanWaitSec, r.P95WaitSec, r.UtilMakespanPct, r.Preemptions)
		}
		out = append(out, r)
	}
	return out, nil
}

// writeOverTime writes the over-time tables.
func (r *Report) writeOverTime(w io.Writer) {
	fmt.Fprintf(w, "\nOver time (%s x %d copies: arrivals at creation time / %g, trace durations, passes every second;\n", r.OverTimePods, r.OverTimeCopies, r.OverTimeScale)
	fmt.Fprintf(w, "queues team-a/b/c by name hash with quotas 40/35/25%% of the GPUs; priority from qos: LS, Guaranteed high, BE low,\n")
	fmt.Fprintf(w, "others normal; a checkpoint every %g s; declared runtimes over-estimate by up to %gx). fifo is FIFO first fit.\n\n", r.OverTimeCheckpoint, r.OverTimeOverestimate)
	fmt.Fprintf(w, "| scheduler | placement | done / tasks | mean wait s | p95 wait s | GPU util %% (makespan) | GPU util %% (arrivals) | makespan s | backlog cleared s | preemptions | GPU-h lost | backfilled |\n")
	fmt.Fprintf(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, x := range r.OverTime {
		fmt.Fprintf(w, "| %s | %s | %d / %d | %.0f | %.0f | %.2f | %.1f | %.0f | %.0f | %d | %.1f | %d |\n", x.Scheduler, x.Policy, x.Completed, x.Tasks,
			x.MeanWaitSec, x.P95WaitSec, x.UtilMakespanPct, x.UtilPct, x.MakespanSec, x.LastStartSec, x.Preemptions, x.LostGPUHours, x.Backfilled)
	}
	fmt.Fprintf(w, "\nWait by group, mean / p95 s (tasks):\n\n| scheduler |")
	groups := func(x OverTimeResult) []WaitStats {
		g := append([]WaitStats(nil), x.ByPriority...)
		g = append(g, x.MultiGPU)
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
