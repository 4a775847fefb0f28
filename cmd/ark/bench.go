package main

import "github.com/spf13/cobra"

// benchCommands are the benchmarks; each prints a Markdown table, or one
// JSON object with --json.
// Each bench_*.go file adds its command here in an init function.
var benchCommands []func() *cobra.Command

func newBenchCmd(*globals) *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Run benchmarks (Markdown tables, or --json)"}
	for _, b := range benchCommands {
		cmd.AddCommand(b())
	}
	return cmd
}

func init() { benchCommands = append(benchCommands, newBenchKernelsCmd) }
