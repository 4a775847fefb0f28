package main

import (
	"strings"
	"testing"
)

// TestServerFlagValues: a --raft-multiplier out of 1..10, an unknown
// --queue-order, a negative --queue-age-after, --rpc-hold-timeout or
// --gc-headroom-mib is refused before anything starts, naming the flag,
// what it may be and the value.
func TestServerFlagValues(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"server", "--data-dir", dir, "--raft-multiplier", "0"}, "--raft-multiplier must be 1..10 (1: fastest failover), got 0"},
		{[]string{"server", "--data-dir", dir, "--raft-multiplier", "11"}, "--raft-multiplier must be 1..10 (1: fastest failover), got 11"},
		{[]string{"bench", "cluster", "--raft-multiplier", "-2"}, "--raft-multiplier must be 1..10, got -2"},
		{[]string{"server", "--data-dir", dir, "--queue-order", "fifo"}, `--queue-order must be one of shortest-all, shortest, submission, got "fifo"`},
		{[]string{"server", "--data-dir", dir, "--queue-age-after", "-1s"}, "--queue-age-after must be positive (or 0: the order's default), got -1s"},
		{[]string{"server", "--data-dir", dir, "--gc-headroom-mib", "-1"}, "--gc-headroom-mib must not be negative (0: Go's GOGC alone), got -1"},
		{[]string{"server", "--data-dir", dir, "--rpc-hold-timeout", "-1s"}, "--rpc-hold-timeout must not be negative (0: answer at once), got -1s"},
	} {
		code, out, _ := runArk(t, c.args...)
		if code != exitUsage || !strings.Contains(out, c.want) {
			t.Errorf("ark %s: exit %d, output %q; want exit %d saying %q", strings.Join(c.args, " "), code, out, exitUsage, c.want)
		}
	}
}
