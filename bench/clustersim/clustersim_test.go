package clustersim

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunSmall runs the whole simulation at 20 nodes: real servers, the
// agents, a stream that fills the cluster with tasks that end, and a
// leader kill; once with a closed-loop stream and once open-loop. It
// checks that each figure was measured, not how fast.
func TestRunSmall(t *testing.T) {
	t.Run("closed loop", func(t *testing.T) { runSmall(t, 0) })
	t.Run("open loop", func(t *testing.T) { runSmall(t, 25) })
}

func runSmall(t *testing.T, rate float64) {
	if testing.Short() {
		t.Skip("starts three servers and builds ark")
	}
	bin := filepath.Join(t.TempDir(), "ark")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/ark").CombinedOutput(); err != nil {
		t.Fatalf("build ark: %v\n%s", err, out)
	}
	var log strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{Binary: bin, Nodes: 20, Duration: 20 * time.Second, TaskDuration: 2 * time.Second,
		Clients: 4, Rate: rate, KillLeader: true, Seed: 1, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Logf("%+v\n%s", res, log.String())
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"nodes", res.Nodes == 20},
		{"jobs submitted", res.Jobs > 0},
		{"placements at least one per job", res.Placements >= res.Jobs},
		{"tasks reported succeeded", res.TasksSucceeded > 0},
		{"heartbeats", res.HeartbeatsPerSec > 0},
		{"submit-to-running measured", res.SubmitToRunningP50ms > 0 && res.SubmitToRunningP99ms >= res.SubmitToRunningP50ms},
		{"leader sampled", res.LeaderCPUCores > 0 && res.LeaderRSSMiB > 0 && res.FollowerRSSMiB > 0},
		{"failover timed", res.FailoverS > 0},
		{"raft log read", res.RaftLogBytesPerJob > 0 && res.RaftEntriesPerJob >= 1},
		{"every class of the mix", len(res.Mix) == 4},
		{"the offer reported", res.OfferedPerSec == rate},
		{"leader changes read (the first election and the kill's)", res.LeaderChanges >= 3},
		{"arrival lag measured only when open-loop", (rate > 0) == (res.ArrivalLagP99ms > 0)},
	} {
		if !c.ok {
			t.Errorf("%s: not as expected in %+v", c.name, res)
		}
	}
}
