package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestHAPreemptionAcrossFailover: a preemption committed through Raft
// survives a SIGKILL of the leader: the new leader places the preempting
// job once its victim has stopped, the victim waits requeued, and no GPU
// is ever held by two running allocations.
func TestHAPreemptionAcrossFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	c := startThreeWithToken(t, "", "--preemption-min-runtime", "0s")
	start(t, "agent", "--name", "a", "--servers", strings.Join(c.addrs, ","), "--data-dir", t.TempDir(),
		"--fake-gpus", "2xH200:141Gi", "--log-level", "warn", "--stop-grace", "1s")
	cl := c.client()
	ctx := context.Background()
	submit := func(name string, prio string) string {
		t.Helper()
		r, err := cl.SubmitJob(ctx, []byte(`{"name":"`+name+`","kind":"batch","priority":`+prio+
			`,"resources":{"gpus":2,"cpu":"500m","memory":"64Mi"},"task":{"driver":"exec","exec":{"command":["sleep","300"]}}}`))
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	job := func(id string) *api.Job {
		var j *api.Job
		waitUntil(t, 20*time.Second, "job "+id, func() bool {
			var err error
			j, _, err = cl.Job(ctx, id, 0, 0)
			return err == nil
		})
		return j
	}
	running := func(id string) bool {
		j := job(id)
		n := 0
		for _, a := range j.Allocations {
			if a.Status == api.AllocRunning && a.DesiredStatus == api.DesiredRun {
				n++
			}
		}
		return j.Status == api.JobRunning && n == 1
	}
	waitUntil(t, 20*time.Second, "the agent's node", func() bool {
		nodes, err := cl.Nodes(ctx)
		return err == nil && len(nodes) == 1 && nodes[0].Status == api.NodeReady
	})
	low := submit("low", "10")
	waitUntil(t, 20*time.Second, "low running", func() bool { return running(low) })
	high := submit("high", "90")
	waitUntil(t, 20*time.Second, "the preemption committed", func() bool { return job(low).Preemptions == 1 })

	leader := c.waitLeader()
	c.procs[leader].kill9(t)
	c.start(leader)
	c.waitLeader()

	waitUntil(t, 30*time.Second, "high running after the failover", func() bool { return running(high) })
	if j := job(low); j.Status != api.JobPending || !strings.Contains(j.LastPreemption, "preempted by job "+high) {
		t.Errorf("low: %s %q", j.Status, j.LastPreemption)
	}
	// No GPU held twice: every allocation still running or starting is
	// high's.
	for _, id := range []string{low, high} {
		for _, a := range job(id).Allocations {
			if !a.Terminal() && a.DesiredStatus == api.DesiredRun && a.JobID != high {
				t.Errorf("allocation %s of %s still holds GPUs %v", a.ID, id, a.GPUs)
			}
		}
	}
	for _, id := range []string{low, high} {
		_ = cl.CancelJob(ctx, id)
	}
}
