package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/worker/train"
)

func init() { benchCommands = append(benchCommands, newBenchTrainCmd) }

// newBenchTrainCmd is `ark bench train`: tokens/s per device of the builtin
// trainer at 1 and 2 ranks and the scaling efficiency.
func newBenchTrainCmd() *cobra.Command {
	var (
		bc     train.BenchConfig
		data   string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Tokens/s per device of the builtin trainer at 1 and 2 ranks, scaling efficiency, MFU",
		Long: `Runs the builtin trainer's data-parallel step (forward, backward, bucketed
all-reduce overlapped with backward, clipping, AdamW) at each --ranks world
size. Every rank is a goroutine of this process with its own CPU device of
--threads threads (one "device"), and the ranks talk through collective over
loopback (--transport tcp or shm). After --warmup steps it times --steps steps
in each of --rounds interleaved rounds (the best round of each is kept), and
prints, per world size: tokens/s per device and in total, the step time
split into compute and exposed (not overlapped) all-reduce, MFU against the
device's own measured 512^3 matmul rate, and whether every rank ended with
bit-identical parameters. Scaling efficiency is the largest world's tokens/s
per device over the 1-rank figure. A control run of the same ranks training
independently (no all-reduce) separates the cost of communication from that
of ranks sharing cores (or the machine's other load, printed as loadavg).
Each rank count needs that many threads' worth of idle cores to be meaningful.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			text, err := os.ReadFile(data)
			if err != nil {
				return usageError{fmt.Errorf("--data: %w", err)}
			}
			bc.Text = text
			res, err := train.Bench(cmd.Context(), bc)
			if err != nil {
				if errors.Is(err, train.ErrConfig) {
					return usageError{err}
				}
				return err
			}
			if asJSON || wantJSON(cmd) {
				return printJSON(cmd.OutOrStdout(), res)
			}
			writeTrainBench(cmd.OutOrStdout(), res)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&bc.Model, "model", "gpt-tiny", fmt.Sprintf("builtin model %v", train.Presets()))
	f.IntSliceVar(&bc.Ranks, "ranks", []int{1, 2}, "world sizes, comma-separated (include 1 for the efficiency)")
	f.IntVar(&bc.ThreadsPerRank, "threads", 1, "CPU threads per rank (device)")
	f.IntVar(&bc.Batch, "batch", 8, "sequences per rank per step")
	f.IntVar(&bc.Warmup, "warmup", 5, "untimed steps first")
	f.IntVar(&bc.Steps, "steps", 30, "timed steps per round")
	f.IntVar(&bc.Rounds, "rounds", 3, "rounds of every configuration, interleaved; the best is kept")
	f.StringVar(&bc.Transport, "transport", "tcp", "collective transport between ranks: tcp or shm")
	f.StringVar(&data, "data", "examples/data/shakespeare.txt", "training text")
	f.BoolVar(&asJSON, "json", false, "print one JSON object instead of Markdown")
	return cmd
}

func writeTrainBench(w io.Writer, r *train.BenchResult) {
	fmt.Fprintf(w, "## ark bench train: %s (%d parameters), %d tokens/step/device\n\n", r.Model, r.Params, r.TokensPerStep)
	keys := make([]string, 0, len(r.Env))
	for k := range r.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "- %s: %s\n", k, r.Env[k])
	}
	fmt.Fprintf(w, "- MFU denominator: %.1f GFLOP/s per device (512^3 matmul, measured); %.2f MFLOP/token\n\n", r.PeakGFLOPs, r.FLOPsPerToken/1e6)
	fmt.Fprintln(w, "| ranks | tokens/s per device | tokens/s total | step ms | compute ms | exposed all-reduce ms | MFU | loss | ranks identical |")
	fmt.Fprintln(w, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
	for _, run := range r.Runs {
		ranks := fmt.Sprint(run.Ranks)
		identical := fmt.Sprint(run.Identical)
		if run.Independent {
			ranks += " independent"
			identical = "-"
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %.1f | %.1f | %.1f | %.1f%% | %.3f | %s |\n",
			ranks, run.TokensPerSec, run.TotalTokensPerSec, run.StepMS, run.ComputeMS, run.ExposedCommMS, 100*run.MFU, run.Loss, identical)
	}
	if r.ScalingEfficiency > 0 {
		fmt.Fprintf(w, "\nScaling efficiency (%d ranks vs 1, per device): %.1f%%\n", r.Runs[len(r.Runs)-1].Ranks, 100*r.ScalingEfficiency)
	}
	if r.CommEfficiency > 0 {
		fmt.Fprintf(w, "Against the same ranks run independently (no all-reduce, same cores): %.1f%%\n", 100*r.CommEfficiency)
	}
}
