package state

import (
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ark-sched/ark/scheduler/api"
)

// scanUsage is the usage the counter keeps, by a scan of every job.
func scanUsage(s *Snapshot, ns string) NamespaceUsage {
	var u NamespaceUsage
	for _, j := range s.Jobs(nil) {
		if j.Namespace != ns {
			continue
		}
		switch j.Status {
		case api.JobPending:
			u.Pending++
		case api.JobRunning:
			u.Running++
		default:
			continue
		}
		u.GPUMilli += j.Spec.GPUMilliTotal()
	}
	return u
}

// TestCountUnfinishedFollowsJobs: the per-namespace counts (jobs and GPUs)
// equal a scan of the jobs after each kind of write that moves a job in or out of
// pending and running (register, duplicate register, place, succeed, fail
// and requeue, cancel, GC), and after a snapshot is restored.
func TestCountUnfinishedFollowsJobs(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", 8)
	h.addNode("n2", 8)
	register := func(id, ns string) {
		j := testJob(id, 1, 1)
		j.Namespace, j.Spec.Namespace = ns, ns
		h.ok(RegisterJobType, RegisterJobRequest{Job: j})
	}
	namespaces := []string{"default", "nlp", "vision", "none"}
	steps := []struct {
		name string
		do   func()
		want map[string]int
	}{
		{"register", func() {
			register("a", "nlp")
			register("b", "nlp")
			register("c", "vision")
			register("d", "default")
		}, map[string]int{"nlp": 2, "vision": 1, "default": 1}},
		{"register an existing job again", func() { h.apply(RegisterJobType, RegisterJobRequest{Job: testJob("a", 1, 1)}) },
			map[string]int{"nlp": 2, "vision": 1, "default": 1}},
		{"place (pending to running)", func() {
			h.run("a", on("n1", 0))
			h.run("c", on("n2", 0))
			h.ok(AllocStatusType, AllocStatusRequest{AllocID: "a-0", Update: api.AllocStatusUpdate{Status: api.AllocRunning}, Time: t0})
		}, map[string]int{"nlp": 2, "vision": 1, "default": 1}},
		{"succeed", func() {
			if err, isErr := report(h, "a-0", api.AllocSucceeded, 0, "").(error); isErr {
				t.Fatal(err)
			}
		}, map[string]int{"nlp": 1, "vision": 1, "default": 1}},
		{"cancel", func() {
			h.ok(CancelJobType, CancelJobRequest{JobID: "c", Time: t0})
			h.ok(CancelJobType, CancelJobRequest{JobID: "d", Time: t0})
		}, map[string]int{"nlp": 1, "vision": 0, "default": 0}},
		{"gc the finished", func() {
			h.ok(GCJobsType, GCJobsRequest{JobIDs: []string{"a", "c", "d"}, Before: t0.Add(time.Hour)})
		}, map[string]int{"nlp": 1, "vision": 0, "default": 0}},
		{"a job without a namespace is not counted", func() {
			j := testJob("e", 1, 1)
			j.Namespace = ""
			h.ok(RegisterJobType, RegisterJobRequest{Job: j})
		}, map[string]int{"nlp": 1, "vision": 0, "default": 0}},
	}
	check := func(step string, s *Snapshot, want map[string]int) {
		t.Helper()
		for _, ns := range namespaces {
			if got := s.CountUnfinished(ns, 1000); got != want[ns] {
				t.Errorf("%s: namespace %q: %d unfinished, want %d", step, ns, got, want[ns])
			}
			if got, scan := s.NamespaceUsage(ns), scanUsage(s, ns); got != scan {
				t.Errorf("%s: namespace %q: usage %+v, a scan says %+v", step, ns, got, scan)
			}
		}
	}
	for _, st := range steps {
		st.do()
		check(st.name, h.snap(), st.want)
	}
	if got := h.snap().CountUnfinished("nlp", 0); got != 0 {
		t.Errorf("limit 0: %d", got)
	}
	register("f", "nlp")
	if got := h.snap().CountUnfinished("nlp", 1); got != 1 {
		t.Errorf("2 unfinished, limit 1: %d", got)
	}

	// A restored state (whose snapshot does not carry the counts) counts
	// its jobs.
	f := NewFSM(zaptest.NewLogger(t))
	if err := f.Restore(readCloser(persist(t, h.fsm).Bytes())); err != nil {
		t.Fatal(err)
	}
	check("restored", f.Store().Snapshot(), map[string]int{"nlp": 2, "vision": 0, "default": 0})
}
