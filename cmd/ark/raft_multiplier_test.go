package main

import (
	"strings"
	"testing"
)

// TestRaftMultiplierFlag: a --raft-multiplier out of 1..10 is refused
// before anything starts, naming the flag, the range and the value.
func TestRaftMultiplierFlag(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"server", "--data-dir", dir, "--raft-multiplier", "0"}, "--raft-multiplier must be 1..10 (1: fastest failover), got 0"},
		{[]string{"server", "--data-dir", dir, "--raft-multiplier", "11"}, "--raft-multiplier must be 1..10 (1: fastest failover), got 11"},
		{[]string{"bench", "cluster", "--raft-multiplier", "-2"}, "--raft-multiplier must be 1..10, got -2"},
	} {
		code, out, _ := runArk(t, c.args...)
		if code != exitUsage || !strings.Contains(out, c.want) {
			t.Errorf("ark %s: exit %d, output %q; want exit %d saying %q", strings.Join(c.args, " "), code, out, exitUsage, c.want)
		}
	}
}
