package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryCommandHasExamples walks the command tree: every command a user
// runs (one with a RunE) shows examples in its help, as kubectl's do; a
// group of commands lists its subcommands instead.
func TestEveryCommandHasExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	var missing []string
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		if c.Runnable() && strings.TrimSpace(c.Example) == "" {
			missing = append(missing, c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRoot())
	if len(missing) > 0 {
		t.Errorf("%d command(s) without an Examples section:\n  %s", len(missing), strings.Join(missing, "\n  "))
	}
}
