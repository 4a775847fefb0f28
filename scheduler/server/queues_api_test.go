package server

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/scheduler/placement"
)

func queueSpec(name, queue string, gpus int) []byte {
	return []byte(`{"name":"` + name + `","queue":"` + queue + `","kind":"batch","resources":{"gpus":` + string(rune('0'+gpus)) + `},"task":{"driver":"exec","exec":{"command":["true"]}}}`)
}

// loadQueuesYAML loads a queues file with the given body.
func loadQueuesYAML(t *testing.T, body string) map[string]placement.Queue {
	t.Helper()
	file := filepath.Join(t.TempDir(), "queues.yaml")
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	queues, err := LoadQueues(file)
	if err != nil {
		t.Fatal(err)
	}
	return queues
}

// TestQueueQuota: a queue at its GPU quota holds its next job back with a
// reason, while another queue's job runs; a queue that may borrow uses idle
// GPUs no other quota needs.
func TestQueueQuota(t *testing.T) {
	queues := loadQueuesYAML(t, "- {name: small, quotaGPUs: 2}\n- {name: lender, quotaGPUs: 2, borrow: true}\n- {name: big, quotaGPUs: 2}\n")
	s := startServer(t, Config{Queues: queues})
	c, _ := client.New(s.HTTPAddr())
	bg := context.Background()
	if _, err := c.RegisterNode(bg, fakeNode("n", 8)); err != nil {
		t.Fatal(err)
	}
	submit := func(name, queue string, gpus int) string {
		t.Helper()
		r, err := c.SubmitJob(bg, queueSpec(name, queue, gpus))
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	status := func(id string) *api.Job {
		j, _, err := c.Job(bg, id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	first := submit("s1", "small", 2)
	waitFor(t, 5*time.Second, "first job running", func() bool { return status(first).Status == api.JobRunning })
	second := submit("s2", "small", 2)
	waitFor(t, 5*time.Second, "a quota reason", func() bool { return status(second).Reason != "" })
	if j := status(second); j.Status != api.JobPending || !strings.Contains(j.Reason, "queue small at quota 2/2 GPUs") {
		t.Errorf("over quota: %s %q", j.Status, j.Reason)
	}
	other := submit("b1", "big", 2)
	waitFor(t, 5*time.Second, "another queue's job running", func() bool { return status(other).Status == api.JobRunning })
	// lender: 2 of its own, then 2 borrowed (8 GPUs - 4 used - 0 still
	// reserved by small and big, which use their quotas, leaves 4).
	l1, l2 := submit("l1", "lender", 2), submit("l2", "lender", 2)
	waitFor(t, 5*time.Second, "lender's jobs running", func() bool {
		return status(l1).Status == api.JobRunning && status(l2).Status == api.JobRunning
	})
	if j := status(second); j.Status != api.JobPending {
		t.Errorf("small's second job: %s", j.Status)
	}
	qs, err := c.Queues(bg)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q["name"] == "lender" && (q["usedGPUs"] != 4.0 || q["borrowedGPUs"] != 2.0) {
			t.Errorf("lender queue: %v", q)
		}
	}
}

func TestLoadQueuesErrors(t *testing.T) {
	for body, want := range map[string]string{
		"- {quotaGPUs: 2}\n":           "has no name",
		"- {name: a, quotaGPUs: -1}\n": "must not be negative",
		"- {name: a}\n- {name: a}\n":   "listed twice",
		"- {name: a, quota: 2}\n":      "unknown field",
		"name: a\n":                    "cannot unmarshal",
	} {
		file := filepath.Join(t.TempDir(), "q.yaml")
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadQueues(file); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadQueues(%q) = %v, want %q", body, err, want)
		}
	}
}

// TestQueuePreemption: a queue within its quota takes back GPUs another
// queue borrowed (the borrower is preempted whatever the priorities), and a
// high-priority job of a queue at its quota evicts the queue's own
// lower-priority work rather than wait, leaving other queues alone. A
// goroutine plays the agents: it reports placed allocations running and
// stopped ones ended.
func TestQueuePreemption(t *testing.T) {
	queues := loadQueuesYAML(t, "- {name: owner, quotaGPUs: 2}\n- {name: borrower, quotaGPUs: 2, borrow: true}\n- {name: team, quotaGPUs: 2}\n")
	s := startServer(t, Config{Queues: queues})
	c, _ := client.New(s.HTTPAddr())
	bg := context.Background()
	ctx, stop := context.WithCancel(bg)
	defer stop()
	var nodeIDs sync.Map
	register := func(name string) {
		r, err := c.RegisterNode(bg, fakeNode(name, 4))
		if err != nil {
			t.Fatal(err)
		}
		nodeIDs.Store(r.ID, true)
	}
	go func() { // the agents
		for ctx.Err() == nil {
			nodeIDs.Range(func(id, _ any) bool {
				allocs, _, err := c.NodeAllocations(ctx, id.(string), 0, 0)
				if err != nil {
					return true
				}
				for _, a := range allocs {
					switch {
					case a.Terminal():
					case a.DesiredStatus == api.DesiredStop:
						_ = c.UpdateAllocStatus(ctx, a.ID, api.AllocStatusUpdate{Status: api.AllocFailed, Signal: "SIGTERM"})
					case a.Status == api.AllocPending:
						_ = c.UpdateAllocStatus(ctx, a.ID, api.AllocStatusUpdate{Status: api.AllocRunning})
					}
				}
				return true
			})
			time.Sleep(20 * time.Millisecond)
		}
	}()
	submit := func(name, queue string, prio int) string {
		t.Helper()
		r, err := c.SubmitJob(bg, []byte(`{"name":"`+name+`","queue":"`+queue+`","priority":`+strconv.Itoa(prio)+
			`,"kind":"batch","resources":{"gpus":2},"task":{"driver":"exec","exec":{"command":["sleep","600"]}}}`))
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	status := func(id string) *api.Job {
		j, _, err := c.Job(bg, id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	running := func(id string) bool { return status(id).Status == api.JobRunning }

	register("n")
	// borrower fills the node: 2 GPUs of its quota, 2 borrowed.
	b1 := submit("b1", "borrower", 900)
	waitFor(t, 5*time.Second, "b1 running", func() bool { return running(b1) })
	b2 := submit("b2", "borrower", 900)
	waitFor(t, 5*time.Second, "b2 running on borrowed GPUs", func() bool { return running(b2) })
	// owner, within its quota, reclaims: the borrowed job goes whatever
	// its priority, and the owner's job runs once it has stopped.
	o1 := submit("o1", "owner", 10)
	waitFor(t, 10*time.Second, "o1 running", func() bool { return running(o1) })
	if j := status(b2); j.Status != api.JobPending || j.Preemptions != 1 || !strings.Contains(j.LastPreemption, "queue owner reclaimed the GPUs this job borrowed") {
		t.Errorf("borrower: %s, preemptions %d, %q", j.Status, j.Preemptions, j.LastPreemption)
	}
	if !running(b1) {
		t.Error("b1, within its queue's quota, was preempted")
	}
	if err := c.CancelJob(bg, b2); err != nil {
		t.Fatal(err)
	}

	// team, on a second node: t1 runs at priority 10 (its quota, 2 GPUs);
	// t2 (10) waits for quota; t3 (90) evicts t1 rather than wait, though
	// GPUs are idle.
	register("m")
	t1 := submit("t1", "team", 10)
	waitFor(t, 5*time.Second, "t1 running", func() bool { return running(t1) })
	t2 := submit("t2", "team", 10)
	waitFor(t, 5*time.Second, "t2 held", func() bool { return strings.Contains(status(t2).Reason, "at quota") })
	t3 := submit("t3", "team", 90)
	waitFor(t, 10*time.Second, "t3 running", func() bool { return running(t3) })
	if j := status(t1); j.Status != api.JobPending || !strings.Contains(j.LastPreemption, "preempted by job "+t3) {
		t.Errorf("t1: %s %q", j.Status, j.LastPreemption)
	}
	if j := status(t2); j.Status != api.JobPending {
		t.Errorf("t2 %s: it may not take the GPUs t1 freed", j.Status)
	}
	if !running(b1) || !running(o1) {
		t.Error("another queue's job was preempted for team's quota")
	}
}
