package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/collective"
	"github.com/ark-sched/ark/collective/collbench"
)

func init() { benchCommands = append(benchCommands, newBenchAllreduceCmd) }

// newBenchAllreduceCmd is `ark bench allreduce`: all-reduce bandwidth and
// latency like nccl-tests, with the point-to-point limit, the TCP round trip
// and the overlap efficiency measured in the same run. Each rank is a
// separate process: this binary re-executed with --worker.
func newBenchAllreduceCmd() *cobra.Command {
	var (
		cfg               collbench.Config
		ranks             []int
		transports        string
		minB, maxB, chunk string
		asJSON, worker    bool
	)
	cmd := &cobra.Command{
		Use:   "allreduce",
		Short: "All-reduce bus bandwidth by size vs the point-to-point limit (tcp, shm)",
		Long: `Runs N ranks as separate processes on this machine (--ranks 2,4) over each
transport (--transport tcp,shm), all-reduces float32 sums from --min-bytes to
--max-bytes (doubling), and prints per size: time, algbw, busbw = algbw x 2(n-1)/n
and the algorithm chosen. The same run measures a point-to-point stream between
two ranks over the same transport (busbw is shown as a fraction of it), the
8-byte latency against a plain TCP round trip, a ring/recursive-doubling
tuning pass, and the overlap efficiency of a compute+all-reduce loop.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if worker || collbench.IsWorker() {
				return collbench.Worker(cmd.Context(), cmd.OutOrStdout())
			}
			var err error
			cfg.Ranks = ranks
			cfg.Transports = strings.Split(transports, ",")
			for _, f := range []struct {
				name string
				s    string
				dst  *int
			}{{"--min-bytes", minB, &cfg.MinBytes}, {"--max-bytes", maxB, &cfg.MaxBytes}, {"--chunk", chunk, &cfg.Chunk}} {
				if f.s == "" {
					continue
				}
				if *f.dst, err = collective.ParseBytes(f.s); err != nil {
					return usagef("%s %q: %v", f.name, f.s, err)
				}
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find own binary: %w", err)
			}
			cfg.Spawn = func(env []string) *exec.Cmd {
				c := exec.Command(exe, "bench", "allreduce", "--worker")
				c.Env = append(os.Environ(), env...)
				return c
			}
			var end func()
			cfg.Log, end = benchProgress(cmd, asJSON)
			res, err := collbench.Run(cmd.Context(), cfg)
			end()
			if err != nil {
				if errors.Is(err, collbench.ErrConfig) {
					return usagef("%v", err)
				}
				return err
			}
			if asJSON || wantJSON(cmd) {
				return collbench.WriteJSON(cmd.OutOrStdout(), res)
			}
			return collbench.WriteMarkdown(cmd.OutOrStdout(), res)
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&ranks, "ranks", []int{2, 4}, "world sizes to run, comma-separated")
	f.StringVar(&transports, "transport", "tcp,shm", "transports: tcp, shm or both comma-separated")
	f.StringVar(&minB, "min-bytes", "8", "smallest message")
	f.StringVar(&maxB, "max-bytes", "64M", "largest message (up to 256M; sizes double)")
	f.DurationVar(&cfg.PerSize, "per-size", 150*time.Millisecond, "timed budget per message size")
	f.IntVar(&cfg.Channels, "channels", 0, "parallel ring channels (default: library default, ARK_COLL_CHANNELS)")
	f.StringVar(&chunk, "chunk", "", "ring chunk size (default: library default)")
	f.StringVar(&cfg.Algo, "algo", "", "force an algorithm: auto, ring, rd")
	f.BoolVar(&cfg.InProcess, "in-process", false, "run ranks as goroutines of this process instead of processes")
	f.BoolVar(&asJSON, "json", false, "print one JSON object instead of Markdown")
	f.BoolVar(&worker, "worker", false, "internal: run as one rank of a benchmark")
	_ = f.MarkHidden("worker")
	return cmd
}
