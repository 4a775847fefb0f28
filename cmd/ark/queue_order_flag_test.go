package main

import (
	"strings"
	"testing"
)

// TestQueueOrderFlags: an unknown --queue-order or a negative
// --queue-age-after is refused before anything starts, naming the flag,
// what it may be and the value.
func TestQueueOrderFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"server", "--data-dir", dir, "--queue-order", "fifo"}, `--queue-order must be one of shortest-all, shortest, submission, got "fifo"`},
		{[]string{"server", "--data-dir", dir, "--queue-age-after", "-1s"}, "--queue-age-after must be positive (or 0: the order's default), got -1s"},
	} {
		code, out, _ := runArk(t, c.args...)
		if code != exitUsage || !strings.Contains(out, c.want) {
			t.Errorf("ark %s: exit %d, output %q; want exit %d saying %q", strings.Join(c.args, " "), code, out, exitUsage, c.want)
		}
	}
}
