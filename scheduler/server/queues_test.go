package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
)

func queueSpec(name, queue string, gpus int) []byte {
	return []byte(`{"name":"` + name + `","queue":"` + queue + `","kind":"batch","resources":{"gpus":` + string(rune('0'+gpus)) + `},"task":{"driver":"exec","exec":{"command":["true"]}}}`)
}

// TestQueueQuota: a queue at its GPU quota holds its next job back with a
// reason, while another queue's job runs; a queue that may borrow uses idle
// GPUs no other quota needs.
func TestQueueQuota(t *testing.T) {
	file := filepath.Join(t.TempDir(), "queues.yaml")
	if err := os.WriteFile(file, []byte("- {name: small, quotaGPUs: 2}\n- {name: lender, quotaGPUs: 2, borrow: true}\n- {name: big, quotaGPUs: 2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	queues, err := LoadQueues(file)
	if err != nil {
		t.Fatal(err)
	}
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
