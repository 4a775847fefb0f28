package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/bench/clustersim"
	"github.com/ark-sched/ark/scheduler/cluster"
)

// benchRaftMultiplier is the servers' Raft multiplier in `ark bench
// cluster`: three servers and thousands of simulated agents share the
// cores. At 1 (a 250 ms lease), 2,000 nodes on 2 shared cores saw 9
// elections in 90 s with no server down; at 2, none but the one the
// bench's SIGKILL causes (bench/README.md).
const benchRaftMultiplier = 2

// openLoopInFlight is how many submissions an open-loop stream (--rate)
// keeps in flight at most unless --clients says otherwise.
const openLoopInFlight = 512

func init() { benchCommands = append(benchCommands, newBenchClusterCmd) }

// newBenchClusterCmd is `ark bench cluster`; the work is in bench/clustersim.
func newBenchClusterCmd() *cobra.Command {
	var (
		cfg    = clustersim.Config{KillLeader: true}
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Control plane at scale: N simulated agents, an openb job stream, a leader failover",
		Long: `Starts a 3-server cluster of real ark server processes on loopback (fsync on)
and, in this process, --nodes agents with 8 fake GPUs each that register,
heartbeat at the servers' TTL and long-poll their allocations through the
agent's API client, reporting each task running and then succeeded after
--task-duration (±50%). It then submits jobs shaped like the openb trace's
tasks (single-GPU, GPU shares, multi-GPU, and 2- or 4-node gangs of 8-GPU
tasks) from --clients clients until the cluster is full or --jobs / --duration
is reached, SIGKILLs the leader once half way (--kill-leader), and reports
heartbeats, submissions and placements per second, submit-to-running p50/p99
(jobs submitted below 90% full), the leader's CPU and memory, the followers'
memory, Raft log bytes per job, the failover time and the nodes it marked down.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Nodes <= 0 || cfg.Clients <= 0 || cfg.TaskDuration <= 0 || cfg.Jobs < 0 || cfg.Duration < 0 {
				return usagef("--nodes, --clients and --task-duration must be positive, --jobs and --duration not negative")
			}
			if !clustersim.ValidRate(cfg.Rate) {
				return usagef("--rate must be 0 (closed loop) or a positive number of arrivals a second, got %v", cfg.Rate)
			}
			if cfg.Rate > 0 && !cmd.Flags().Changed("clients") {
				// An open loop's submitters only bound what is in flight:
				// 32 at a busy server's 0.3-0.5 s a submission would cap
				// the offer near 100/s, whatever --rate says.
				cfg.Clients = openLoopInFlight
			}
			if cluster.CheckMultiplier(cfg.RaftMultiplier) != nil {
				return usagef("--raft-multiplier must be 1..%d, got %d", cluster.MaxMultiplier, cfg.RaftMultiplier)
			}
			if cfg.Jobs == 0 && cfg.Duration == 0 {
				return usagef("give --jobs or --duration (the stream also ends when the cluster is full)")
			}
			bin, err := os.Executable()
			if err != nil {
				return err
			}
			cfg.Binary = bin
			var end func()
			cfg.Log, end = benchProgress(cmd, asJSON)
			defer end()
			res, err := clustersim.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if asJSON || wantJSON(cmd) {
				return res.WriteJSON(cmd.OutOrStdout())
			}
			return res.WriteMarkdown(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Nodes, "nodes", 10000, "simulated agents (nodes of 8 fake GPUs)")
	f.IntVar(&cfg.Jobs, "jobs", 0, "stop the job stream after this many submissions (0: no bound)")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Minute, "stop the job stream after this long (0: no bound)")
	f.DurationVar(&cfg.TaskDuration, "task-duration", 5*time.Minute, "mean simulated run time of a task (±50%)")
	f.IntVar(&cfg.Clients, "clients", 32, "concurrent job submitters (with --rate: the most submissions in flight, default 512)")
	f.Float64Var(&cfg.Rate, "rate", 0, "open-loop stream: Poisson arrivals a second, latencies counted from arrival (0: closed loop, each client sends its next job when answered)")
	f.BoolVar(&cfg.KillLeader, "kill-leader", true, "SIGKILL the leader once, half way through the stream")
	f.StringVar(&cfg.Pods, "pods", "", "openb task list the job shapes come from (default bench/data/openb/openb_pod_list_default.csv.gz)")
	f.Uint64Var(&cfg.Seed, "seed", 42, "seed of the job stream")
	f.StringVar(&cfg.ProfileDir, "profile-dir", "", "write here the leader's CPU profiles (one window after another through the stream) and, at the end, its heap profile and /metrics; files not written are listed, with why, in the result's profile_errors")
	f.IntVar(&cfg.ProfileSeconds, "profile-seconds", 20, "length of each CPU profile window (under the servers' 30 s write timeout)")
	f.IntVar(&cfg.RaftMultiplier, "raft-multiplier", benchRaftMultiplier, "the servers' --raft-multiplier: three servers and the agents share this machine's cores")
	f.StringVar(&cfg.ServerLogs, "server-logs", "", "keep the servers' logs (warn level) in this directory")
	f.StringArrayVar(&cfg.ServerArgs, "server-flag", nil, "a flag added to every server's command line, as --server-flag=--raft-snapshot-interval=30m (repeatable)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}
