package main

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryCommandDeclaresOutput walks the command tree: every command a
// user runs either prints JSON with -o json (jsonCommands) or is listed as
// text-only with a reason (textOnly), and neither list names a command
// that does not exist.
func TestEveryCommandDeclaresOutput(t *testing.T) {
	seen := map[string]bool{}
	var undeclared, both []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		if c.Runnable() && c.HasParent() {
			k := commandKey(c)
			seen[k] = true
			why, text := textOnly[k]
			switch {
			case jsonCommands[k] && text:
				both = append(both, k)
			case !jsonCommands[k] && !text:
				undeclared = append(undeclared, k)
			case text && strings.TrimSpace(why) == "":
				t.Errorf("ark %s is text-only without a reason", k)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRoot())
	if len(undeclared) > 0 {
		t.Errorf("%d command(s) neither in jsonCommands nor in textOnly (output_modes.go):\n  %s", len(undeclared), strings.Join(undeclared, "\n  "))
	}
	if len(both) > 0 {
		t.Errorf("in both jsonCommands and textOnly: %v", both)
	}
	var stale []string
	for k := range jsonCommands {
		if !seen[k] {
			stale = append(stale, k)
		}
	}
	for k := range textOnly {
		if !seen[k] {
			stale = append(stale, k)
		}
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		t.Errorf("output_modes.go lists commands that do not exist: %v", stale)
	}
}

// TestOutputJSONRefusedOnTextOnly: -o json on a text-only command is a
// usage error that says why, before the command does anything.
func TestOutputJSONRefusedOnTextOnly(t *testing.T) {
	dir := t.TempDir()
	code, out, _ := runArk(t, "tls", "ca", "create", "--out", dir, "-o", "json")
	if code != exitUsage || !strings.Contains(out, "ark tls ca create has no JSON output (writes files") {
		t.Errorf("exit %d, output %q", code, out)
	}
}

// TestOutputJSONNodeCommands: node drain and node eligibility print the
// node as JSON with -o json (text before).
func TestOutputJSONNodeCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	t.Parallel()
	s := newSrv(t)
	s.start(t)
	startAgents(t, s.http, "1xH200:141Gi", []string{"a"})
	for _, args := range [][]string{
		{"node", "drain", "a", "--deadline", "0s", "--wait"},
		{"node", "drain", "a", "--disable"},
		{"node", "eligibility", "a", "--enable"},
	} {
		out, err := cli(t, s.http, append(args, "-o", "json")...)
		var n struct {
			Name string `json:"name"`
		}
		if err != nil || json.Unmarshal([]byte(out), &n) != nil || n.Name != "a" {
			t.Errorf("ark %s -o json: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
