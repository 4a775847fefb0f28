package main

import (
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/kernels"
	"github.com/ark-sched/ark/kernels/kbench"
)

// newBenchKernelsCmd is `ark bench kernels`: GFLOP/s of the CPU backend's
// matmul by size and thread count against a naive triple loop measured in
// the same run, plus attention and layernorm forward and backward (and GPU 0
// through the CUDA backend where one is present).
func newBenchKernelsCmd() *cobra.Command {
	var (
		cfg    kbench.Config
		layer  []int
		noGPU  bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "kernels",
		Short: "GFLOP/s of Ark's kernels (matmul vs a naive loop, attention, layernorm)",
		Long: `Measures the CPU backend's matmul at each --sizes (square, float32) for each
--threads count, the naive triple-loop matmul at the same sizes on one thread
as the baseline (--naive=false to skip it; it is the slow part of the run),
OpenBLAS's cblas_sgemm at the same sizes and threads where libopenblas.so.0
loads, with its best kernel family for this CPU (--openblas-core; SkylakeX
with AVX-512, Haswell with AVX2; "env" keeps OPENBLAS_CORETYPE as set),
and attention and layernorm forward and backward on one GPT-style layer
(--layer B,T,C,heads). Every kernel is checked against a float64 reference
before it is timed. Where a CUDA GPU is present, GPU 0 is measured too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(layer) != 0 {
				if len(layer) != 4 {
					return usagef("--layer %v: want B,T,C,heads", layer)
				}
				cfg.Layer = kernels.AttnShape{B: layer[0], T: layer[1], C: layer[2], Heads: layer[3]}
			}
			cfg.CUDA = !noGPU
			var end func()
			cfg.Log, end = benchProgress(cmd, asJSON)
			defer end()
			res, err := kbench.Run(cfg)
			if err != nil {
				if errors.Is(err, kbench.ErrConfig) {
					return usagef("%v", err)
				}
				return err
			}
			if asJSON || wantJSON(cmd) {
				return kbench.WriteJSON(cmd.OutOrStdout(), res)
			}
			return kbench.WriteMarkdown(cmd.OutOrStdout(), res)
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&cfg.Sizes, "sizes", []int{256, 512, 1024}, "square matmul sizes")
	f.IntSliceVar(&cfg.Threads, "threads", nil, "CPU thread counts (default 1 and GOMAXPROCS)")
	f.DurationVar(&cfg.MinTime, "min-time", 300*time.Millisecond, "timed budget per measurement")
	f.BoolVar(&cfg.Naive, "naive", true, "measure the naive matmul baseline")
	f.BoolVar(&cfg.OpenBLAS, "openblas", true, "also measure cblas_sgemm from libopenblas.so.0 if it loads (a baseline; Ark does not need it)")
	f.StringVar(&cfg.OpenBLASCore, "openblas-core", "", `OpenBLAS kernel family: "" best for this CPU, "env", or e.g. Haswell`)
	f.IntSliceVar(&layer, "layer", nil, "attention/layernorm shape B,T,C,heads (default 4,256,768,12)")
	f.BoolVar(&noGPU, "no-gpu", false, "do not measure a CUDA GPU even if one is present")
	f.BoolVar(&asJSON, "json", false, "print one JSON object instead of Markdown")
	return cmd
}
