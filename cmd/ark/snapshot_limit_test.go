package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHASnapshotRestoreLimit: a snapshot past --snapshot-max-bytes is
// refused whether it reaches the leader or a follower, saying which limit,
// and changes nothing.
func TestHASnapshotRestoreLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	c := startThreeWithToken(t, "", "--snapshot-max-bytes", "2048")
	cl := c.client()
	for i := 0; i < 10; i++ {
		if _, err := cl.SubmitJob(context.Background(), []byte(haSpec)); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "state.snap")
	if _, err := cli(t, c.addrs[0], "operator", "snapshot", "save", file); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(file); err != nil || st.Size() <= 2048 {
		t.Fatalf("snapshot %v %v: want one over the 2048-byte limit", st, err)
	}
	l := c.waitLeader()
	for _, to := range []int{l, (l + 1) % 3} {
		_, err := cli(t, c.addrs[to], "operator", "snapshot", "restore", file)
		if err == nil || !strings.Contains(err.Error(), "larger than the limit of 2048 bytes") {
			t.Errorf("restore past the limit through s%d (leader s%d): %v", to+1, l+1, err)
		}
	}
	if n := len(c.listJobs()); n != 10 {
		t.Errorf("%d jobs after refused restores, want 10", n)
	}
}
