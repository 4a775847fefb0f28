package clustersim

import (
	"strings"
	"testing"
)

func TestUnforcedElections(t *testing.T) {
	for _, c := range []struct {
		changes int
		killed  bool
		want    int
	}{
		{1, false, 0}, {3, false, 1}, {5, false, 2},
		{3, true, 0}, {5, true, 1}, {15, true, 6},
		{0, false, 0}, {1, true, 0}, // nothing read, or a count cut short
	} {
		if got := unforcedElections(c.changes, c.killed); got != c.want {
			t.Errorf("unforcedElections(%d, %v) = %d, want %d", c.changes, c.killed, got, c.want)
		}
	}
}

func TestCounterIn(t *testing.T) {
	page := "# HELP ark_raft_leader_changes_total Times...\n# TYPE ark_raft_leader_changes_total counter\n" +
		"ark_raft_leader_changes_total_other 9\nark_raft_leader_changes_total 5\n"
	if n, err := counterIn(strings.NewReader(page), leaderChangesMetric); err != nil || n != 5 {
		t.Errorf("counterIn = %d, %v; want 5", n, err)
	}
	if _, err := counterIn(strings.NewReader("other 1\n"), leaderChangesMetric); err == nil {
		t.Error("a page without the counter read as one")
	}
	if _, err := counterIn(strings.NewReader(leaderChangesMetric+" x\n"), leaderChangesMetric); err == nil {
		t.Error("a value that is not a number read as one")
	}
}
