package sched

import (
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/scheduler/state"
)

// TestDefaultOrderThroughThePass drives the default order through the
// shipped pass and a real FSM, one GPU freeing at a time: the shortest
// declared maxRuntime goes first whatever the priority, then, once they
// have waited 5 minutes, the jobs that were passed over go ahead of newer
// short ones, in submission order, a job that declares no maxRuntime (a
// service's case) included. The server's 30-minute protection keeps the
// high-priority job from preempting its way ahead: this is the order alone.
func TestDefaultOrderThroughThePass(t *testing.T) {
	c := newCluster(t, Config{PreemptMinRuntime: 30 * time.Minute})
	c.node("a", 1)
	runtime := func(d time.Duration) func(*spec.Job) {
		return func(s *spec.Job) { s.MaxRuntime = spec.Duration(d) }
	}
	c.submit("first", 1, 1, 50)
	c.settle(5)
	c.submit("long", 1, 1, 90, runtime(10*time.Hour))
	c.submit("none", 1, 1, 50)
	c.submit("short", 1, 1, 10, runtime(10*time.Minute))
	c.settle(5)
	// Each round: the running job ends, and the next one placed is checked.
	for _, step := range []struct {
		wait   time.Duration // before the GPU frees
		submit string        // a new short job, submitted as it frees
		want   string
	}{
		{0, "", "short"},                    // shortest first, though its priority is lowest
		{6 * time.Minute, "short2", "long"}, // long and none aged: submission order
		{0, "", "none"},                     // aged, ahead of the new short2
		{0, "", "short2"},
	} {
		c.now = c.now.Add(step.wait)
		running := c.runningJobs()
		if len(running) != 1 {
			t.Fatalf("before %s: running %v, want one job", step.want, running)
		}
		if step.submit != "" {
			c.submit(step.submit, 1, 1, 50, runtime(time.Minute))
		}
		c.finish(running[0])
		c.settle(5)
		if got := c.runningJobs(); len(got) != 1 || got[0] != step.want {
			t.Fatalf("after %s ended: running %v, want %s", running[0], got, step.want)
		}
	}
}

// runningJobs lists the IDs of the jobs running, in ID order.
func (c *cluster) runningJobs() []string {
	var ids []string
	for _, j := range c.snap().Jobs(nil) {
		if j.Status == api.JobRunning {
			ids = append(ids, j.ID)
		}
	}
	return ids
}

// finish reports every live allocation of job id succeeded, as its agent
// does when the task exits 0.
func (c *cluster) finish(id string) {
	c.t.Helper()
	for _, a := range c.snap().Allocs(nil) {
		if a.JobID == id && !a.Terminal() {
			c.apply(state.AllocStatusType, state.AllocStatusRequest{AllocID: a.ID, Update: api.AllocStatusUpdate{Status: api.AllocSucceeded, Message: "test agent"}, Time: c.now})
		}
	}
}
