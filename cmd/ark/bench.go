package main

import "github.com/spf13/cobra"

// benchCommands are the benchmarks; each prints a Markdown table, or one
// JSON object with --json.
var benchCommands = []func() *cobra.Command{
	newBenchAllreduceCmd,
	newBenchCkptCmd,
}

func newBenchCmd(*globals) *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Run benchmarks (Markdown tables, or --json)"}
	for _, b := range benchCommands {
		cmd.AddCommand(b())
	}
	return cmd
}
