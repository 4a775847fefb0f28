package main

import (
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/bench/placementsim"
	"github.com/ark-sched/ark/scheduler/server"
)

func init() { benchCommands = append(benchCommands, newBenchPlacementCmd) }

// newBenchPlacementCmd is `ark bench placement`: packing quality on the
// openb trace (the FGD paper's protocol, reference figures beside ours) and
// the synthetic 10,000-node speed benchmark.
func newBenchPlacementCmd() *cobra.Command {
	var (
		o        placementsim.Options
		arrivals string
		policies string
		// schedulers are the --over-time schedulers.
		schedulers string
		seed       uint64
		asJSON     bool
		// mixClasses, mixPcts and mixSeeds narrow --mix-sweep.
		mixClasses, mixPcts, mixSeeds string
	)
	cmd := &cobra.Command{
		Use:   "placement",
		Short: "GPU packing on the openb trace vs FGD's published figures, and placements/s",
		Long: `Replays openb arrival sequences (bench/data/openb, Alibaba cluster-trace-gpu-v2023,
CC BY 4.0) exactly as bench/data/openb/PROTOCOL.md says: tasks arrive one at a
time, never leave, and are dropped when they do not fit; the headline is the
unallocated GPU % at 100% of the cluster's GPU capacity arrived (lower is better),
printed per policy beside the FGD paper's reference figures. With no flags it
replays the default list, seed 42, with every policy, and checks FGD's and best
fit's decisions against the reference simulator's events.

  --all                    every list and seed in bench/data/openb (15 sequences)
  --arrivals A.csv[,B.csv] replay these (node order found beside them)
  --pods LIST.csv --seed N generate a sequence from a task list
  --events FILE            write the single policy's decisions (reference format)
  --compare-events FILE    compare decisions with a reference events file
  --speed                  synthetic 10,000-node speed benchmark (one core)
  --mix-sweep [--seeds 42,43,44]  Ark vs FGD (and best fit) on the FGD paper's
                           workload mixes, made from the trace lists: GPU sharing
                           0-100% of GPU milli, multi-GPU 0-50% of GPU milli, GPU
                           model named by 0-33% of GPU tasks (--mix-class,
                           --mix-pct narrow it; --seeds 42-50 takes a range); per
                           mix, the margin FGD - Ark, its spread over the seeds
                           and a paired t-test
  --over-time [--time-scale K]  trace-driven run with departures: FIFO first fit vs
                           Ark, the server's own scheduling pass (scheduler/sched:
                           queues, quotas, preemption, backfill); --schedulers,
                           --checkpoint-every, --runtime-overestimate, --pass-interval
                           tune it; --over-time-seed N draws what the trace does not
                           say (queues, declared runtimes, order within a second,
                           copy times up to --over-time-copy-jitter; 0, the default,
                           is the recorded tables' draw). With
                           --json, "schedulers" holds one row per scheduler (FIFO
                           first fit first): mean and p95 wait, mean wait by class,
                           preemptions, GPU-hours lost`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.OverTimeCopyJitter < 0 || math.IsNaN(o.OverTimeCopyJitter) || math.IsInf(o.OverTimeCopyJitter, 0) {
				return usagef("--over-time-copy-jitter: want trace seconds, 0 or more, got %v", o.OverTimeCopyJitter)
			}
			if arrivals != "" {
				o.Arrivals = strings.Split(arrivals, ",")
			}
			if schedulers != "" {
				o.Schedulers = strings.Split(schedulers, ",")
			}
			if policies != "" {
				o.Policies = strings.Split(policies, ",")
			}
			o.Seed = seed
			if err := mixFlags(&o, mixClasses, mixPcts, mixSeeds); err != nil {
				return err
			}
			if o.Pods != "" && !cmd.Flags().Changed("seed") {
				o.Seed = 42
			}
			progress, end := benchProgress(cmd, asJSON)
			rep, err := placementsim.Run(o, progress)
			end()
			if err != nil {
				if errors.Is(err, placementsim.ErrConfig) {
					return usagef("%v", err)
				}
				return err
			}
			if asJSON || wantJSON(cmd) {
				return rep.WriteJSON(cmd.OutOrStdout())
			}
			rep.WriteMarkdown(cmd.OutOrStdout())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Nodes, "nodes", "", "node list CSV (default bench/data/openb/openb_node_list_gpu_node.csv)")
	f.StringVar(&arrivals, "arrivals", "", "arrival sequence CSV(s), comma-separated (.csv or .csv.gz)")
	f.StringVar(&o.NodeOrder, "node-order", "", "tie-break node order CSV (node,sim_name); default: the nodes_*.csv beside the arrival file")
	f.StringVar(&o.Pods, "pods", "", "task list CSV to generate a sequence from (with --seed)")
	f.Uint64Var(&seed, "seed", 42, "seed for --pods and for the random policy")
	f.StringVar(&policies, "policy", "ark,fgd,bestfit,firstfit,random", "policies to run")
	f.StringVar(&o.Events, "events", "", "write every decision of the (single) policy run to FILE")
	f.StringVar(&o.Compare, "compare-events", "", "compare decisions with a reference events FILE")
	f.BoolVar(&o.All, "all", false, "replay every openb list and seed in bench/data/openb")
	f.BoolVar(&o.Speed, "speed", false, "run the synthetic speed benchmark (10,000 nodes, one core)")
	f.IntVar(&o.SpeedNodes, "speed-nodes", 10000, "nodes in the speed benchmark")
	f.BoolVar(&o.OverTime, "over-time", false, "trace-driven simulation with departures (queueing delay, utilisation, makespan)")
	f.StringVar(&o.OverTimePods, "over-time-pods", "", "task list for --over-time (default: the openb default list)")
	f.Float64Var(&o.TimeScale, "time-scale", 1, "divide arrival times by this in --over-time (contention)")
	f.IntVar(&o.Copies, "copies", 1, "submit the --over-time list this many times (copies 1s apart)")
	f.Uint64Var(&o.OverTimeSeed, "over-time-seed", 0, "--over-time: draw the queues, declared runtimes, order of same-second arrivals and copy times with this seed (0: the recorded tables' draw; trace shapes, qos, times and durations stay)")
	f.Float64Var(&o.OverTimeCopyJitter, "over-time-copy-jitter", placementsim.CopyJitter, "--over-time-seed: a copy of --copies comes 1 s plus a draw in [0, this) trace seconds after the one before (0: exactly 1 s, the rest still drawn)")
	f.StringVar(&schedulers, "schedulers", "fifo,ark-nopreempt,ark", "--over-time schedulers: fifo (always run, first), fifo-ark, ark (the server's defaults), ark-nopreempt, ark-nobackfill, ark-submission (--queue-order submission), ark-resvN, ark-shortest[-ageS][-tiers][-nopreempt] (--queue-order shortest, --queue-age-after S, --queue-age-tiers), ark-shortestall[-ageS] (--queue-order shortest-all)")
	f.Float64Var(&o.PassInterval, "pass-interval", 1, "--over-time: seconds between scheduling passes, for every scheduler (a longer interval makes the shipped pass's run cheaper)")
	f.Float64Var(&o.PreemptMinRuntime, "preempt-min-runtime", server.DefaultPreemptMinRuntime.Seconds(), "--over-time: seconds a task runs before it may be preempted (anti-churn; the default is the server's --preemption-min-runtime)")
	f.Float64Var(&o.CheckpointEvery, "checkpoint-every", 1800, "--over-time: seconds between a task's checkpoints (an evicted task restarts from its last)")
	f.Float64Var(&o.Overestimate, "runtime-overestimate", 3, "--over-time: declared maxRuntime = real runtime x a factor uniform in [1, this)")
	f.BoolVar(&o.MixSweep, "mix-sweep", false, "Ark vs FGD and best fit on the FGD paper's workload mixes (sharing, multi-GPU, GPU-model shares)")
	f.StringVar(&mixSeeds, "seeds", "42,43,44", "--mix-sweep: seeds, comma-separated, or ranges (42-50)")
	f.StringVar(&mixClasses, "mix-class", "", "--mix-sweep: only these classes (sharing, multi-gpu, gpu-model), comma-separated")
	f.StringVar(&mixPcts, "mix-pct", "", "--mix-sweep: only these shares in percent, comma-separated")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

// mixFlags parses the --mix-sweep flags into o.
func mixFlags(o *placementsim.Options, classes, pcts, seeds string) error {
	if !o.MixSweep {
		if classes != "" || pcts != "" {
			return usagef("--mix-class and --mix-pct need --mix-sweep")
		}
		return nil
	}
	for _, c := range splitList(classes) {
		if !placementsim.MixClass(c).Valid() {
			return usagef("--mix-class: %q is not one of %v", c, placementsim.MixClasses)
		}
		o.MixClasses = append(o.MixClasses, placementsim.MixClass(c))
	}
	for _, v := range splitList(pcts) {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 {
			return usagef("--mix-pct: %q is not a percentage (0 to 100)", v)
		}
		o.MixPcts = append(o.MixPcts, n)
	}
	for _, v := range splitList(seeds) {
		lo, hi, isRange := strings.Cut(v, "-")
		a, err := strconv.ParseUint(lo, 10, 64)
		b := a
		if err == nil && isRange {
			b, err = strconv.ParseUint(hi, 10, 64)
		}
		if err != nil {
			return usagef("--seeds: %q is not a seed (a non-negative integer) or a range of seeds (42-50)", v)
		}
		if b < a || b-a >= maxMixSeeds {
			return usagef("--seeds: %q: want a range from low to high of at most %d seeds", v, maxMixSeeds)
		}
		for n := a; ; n++ {
			o.MixSeeds = append(o.MixSeeds, n)
			if n == b {
				break
			}
		}
	}
	if len(o.MixSeeds) > maxMixSeeds {
		return usagef("--seeds: %d seeds, want at most %d", len(o.MixSeeds), maxMixSeeds)
	}
	return nil
}

// maxMixSeeds bounds --seeds: each seed is 17 mixes of three replays.
const maxMixSeeds = 100

// splitList splits a comma-separated flag, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
