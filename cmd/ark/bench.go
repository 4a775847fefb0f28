package main

import (
	"io"

	"github.com/spf13/cobra"
)

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

// benchProgress is where a benchmark logs its steps: the live line on
// stderr (liveline.go: one line redrawn on a terminal, each step on a
// line of its own elsewhere, nothing with --json or -o json). end
// finishes it, leaving the last step on a terminal.
func benchProgress(cmd *cobra.Command, asJSON bool) (log io.Writer, end func()) {
	l := newLiveLine(cmd.ErrOrStderr(), asJSON || wantJSON(cmd), true)
	return l.Writer(), func() { l.end(true) }
}
