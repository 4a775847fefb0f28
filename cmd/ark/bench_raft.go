package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/bench/raftbench"
)

func init() { benchCommands = append(benchCommands, newBenchRaftCmd) }

// newBenchRaftCmd is `ark bench raft`; the work is in bench/raftbench.
func newBenchRaftCmd() *cobra.Command {
	var (
		cfg    raftbench.Config
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "raft",
		Short: "Control plane: job submissions committed/s at 1, 16, 256 clients, latency, failover time",
		Long: `Starts a 3-server cluster of real ark server processes on loopback (fsync on),
submits jobs from 1, 16 and 256 concurrent clients for --duration each, and
reports commits per second and p50/p99 commit latency; then SIGKILLs the leader
--failovers times and reports the time to the first write the new leader
accepts (median). --baseline measures hashicorp/raft's own batching defaults
in the same run.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(cfg.Clients) == 0 || cfg.Duration <= 0 || cfg.Failovers < 0 {
				return usagef("--clients, --duration and --failovers must be positive")
			}
			bin, err := os.Executable()
			if err != nil {
				return err
			}
			cfg.Binary = bin
			var end func()
			cfg.Log, end = benchProgress(cmd, asJSON)
			defer end()
			res, err := raftbench.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if out := cmd.Flag("output"); asJSON || (out != nil && out.Value.String() == "json") {
				return res.WriteJSON(cmd.OutOrStdout())
			}
			return res.WriteMarkdown(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&cfg.Clients, "clients", []int{1, 16, 256}, "concurrent clients, one measurement each")
	f.DurationVar(&cfg.Duration, "duration", 5*time.Second, "how long each client count runs")
	f.IntVar(&cfg.Failovers, "failovers", 5, "leader kills to time")
	f.BoolVar(&cfg.Baseline, "baseline", false, "also measure hashicorp/raft's batching defaults, in the same run")
	f.StringVar(&cfg.ProfileDir, "profile-dir", "", "write CPU profiles of the 3 servers and of the clients for each level here")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}
