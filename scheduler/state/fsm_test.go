package state

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
	"go.uber.org/zap/zaptest"

	"github.com/ark-sched/ark/scheduler/api"
)

func TestRegisterJob(t *testing.T) {
	h := newHarness(t)
	j := h.addJob("a", 2, 1)
	if j.Status != api.JobPending || j.CreateIndex != 1 || j.ModifyIndex != 1 || j.Allocations != nil {
		t.Fatalf("registered job = %+v", j)
	}
	if got := h.snap().Index(TableJobs); got != 1 {
		t.Fatalf("jobs index = %d, want 1", got)
	}

	dup := testJob("a", 8, 8)
	err, _ := h.apply(RegisterJobType, RegisterJobRequest{Job: dup}).(error)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate register = %v, want ErrConflict", err)
	}
	if got := h.job("a"); !reflect.DeepEqual(got, j) {
		t.Fatalf("duplicate register changed the job:\n%+v\nwant\n%+v", got, j)
	}
	if got := h.snap().Index(TableJobs); got != 1 {
		t.Fatalf("jobs index = %d after a rejected register, want 1", got)
	}

	for _, req := range []RegisterJobRequest{{}, {Job: &api.Job{Name: "no-id"}}} {
		if err, _ := h.apply(RegisterJobType, req).(error); err == nil {
			t.Errorf("register %+v accepted", req)
		}
	}
	if n := len(h.snap().Jobs(nil)); n != 1 {
		t.Fatalf("%d jobs, want 1", n)
	}
}

func TestApplyPlanCommitsGang(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", 2)
	h.addNode("n2", 2)
	h.addJob("a", 3, 1)
	r := h.place(placementOf("a", on("n1", 0), on("n1", 1), on("n2", 0)))
	if !reflect.DeepEqual(r.Placed, []string{"a"}) || len(r.Rejected) != 0 {
		t.Fatalf("placed %v rejected %v", r.Placed, r.Rejected)
	}
	idx := h.index
	j := h.job("a")
	if j.Status != api.JobRunning || j.Reason != "" || j.StartTime == nil || !j.StartTime.Equal(t0) || j.ModifyIndex != idx {
		t.Fatalf("job after plan = %+v", j)
	}
	allocs := h.snap().AllocsByJob(nil, "a")
	if len(allocs) != 3 {
		t.Fatalf("%d allocations, want 3", len(allocs))
	}
	for i, a := range allocs {
		if a.Rank != i || a.Status != api.AllocPending || a.DesiredStatus != api.DesiredRun || a.CreateIndex != idx || a.JobID != "a" {
			t.Errorf("allocation %d = %+v", i, a)
		}
	}
	if got := len(h.snap().AllocsByNode(nil, "id-n1")); got != 2 {
		t.Errorf("n1 has %d allocations, want 2", got)
	}
	for _, tbl := range []string{TableJobs, TableAllocs} {
		if got := h.snap().Index(tbl); got != idx {
			t.Errorf("%s index = %d, want %d", tbl, got, idx)
		}
	}
	if got := h.snap().LatestIndex(); got != idx {
		t.Errorf("LatestIndex = %d, want %d", got, idx)
	}
}

// Plan rejections: testdata/plan_rejects.txt (TestData).

func TestApplyPlanPendingReasons(t *testing.T) {
	h := newHarness(t)
	h.addJob("a", 1, 1)
	h.addJob("b", 1, 1)
	pending := func(reasons ...PendingReason) {
		t.Helper()
		h.ok(ApplyPlanType, ApplyPlanRequest{Plan: Plan{Pending: reasons}, Time: t0})
	}

	pending(PendingReason{JobID: "a", Reason: "waiting for resources: x"}, PendingReason{JobID: "ghost", Reason: "y"})
	first := h.index
	if j := h.job("a"); j.Reason != "waiting for resources: x" || j.ModifyIndex != first || j.Status != api.JobPending {
		t.Fatalf("job a = %+v", j)
	}
	if got := h.snap().Index(TableJobs); got != first {
		t.Fatalf("jobs index = %d, want %d", got, first)
	}
	if j := h.job("b"); j.Reason != "" || j.ModifyIndex == first {
		t.Fatalf("job b changed: %+v", j)
	}

	// The same reason again changes nothing: no write, no wake-up.
	pending(PendingReason{JobID: "a", Reason: "waiting for resources: x"})
	if j := h.job("a"); j.ModifyIndex != first {
		t.Fatalf("unchanged reason rewrote the job at %d", j.ModifyIndex)
	}
	if got := h.snap().Index(TableJobs); got != first {
		t.Fatalf("unchanged reason moved the jobs index to %d", got)
	}

	// A new reason is recorded.
	pending(PendingReason{JobID: "a", Reason: "cannot fit on this cluster: z"})
	if j := h.job("a"); j.Reason != "cannot fit on this cluster: z" || j.ModifyIndex != h.index {
		t.Fatalf("job a = %+v", j)
	}

	// A reason for a job that is no longer pending is ignored.
	h.addNode("n1", 1)
	h.run("b", on("n1", 0))
	running := h.job("b")
	pending(PendingReason{JobID: "b", Reason: "late"})
	if j := h.job("b"); !reflect.DeepEqual(j, running) {
		t.Fatalf("reason for a running job changed it: %+v", j)
	}
}

// gang starts a 3-rank job "g" over n1 and n2 and reports every rank running.
func gang(t *testing.T) *harness {
	h := newHarness(t)
	h.addNode("n1", 2)
	h.addNode("n2", 2)
	h.addJob("g", 3, 1)
	h.run("g", on("n1", 0), on("n1", 1), on("n2", 0))
	for r := 0; r < 3; r++ {
		h.ok(AllocStatusType, AllocStatusRequest{AllocID: allocID("g", r), Update: api.AllocStatusUpdate{Status: api.AllocRunning}, Time: t0})
	}
	return h
}

func allocID(job string, rank int) string { return job + "-" + string(rune('0'+rank)) }

func report(h *harness, id, status string, exit int, signal string) any {
	u := api.AllocStatusUpdate{Status: status, Signal: signal}
	if status == api.AllocSucceeded || status == api.AllocFailed {
		u.ExitCode = &exit
	}
	return h.apply(AllocStatusType, AllocStatusRequest{AllocID: id, Update: u, Time: t0.Add(time.Minute)})
}

func TestAllocStatusAllSucceeded(t *testing.T) {
	h := gang(t)
	a := h.alloc("g-0")
	if a.Status != api.AllocRunning || a.StartTime == nil || !a.StartTime.Equal(t0) {
		t.Fatalf("running allocation = %+v", a)
	}
	for r := 0; r < 2; r++ {
		if err := report(h, allocID("g", r), api.AllocSucceeded, 0, ""); err != nil {
			t.Fatal(err)
		}
		if j := h.job("g"); j.Status != api.JobRunning {
			t.Fatalf("job is %s after %d of 3 ranks succeeded", j.Status, r+1)
		}
	}
	if err := report(h, "g-2", api.AllocSucceeded, 0, ""); err != nil {
		t.Fatal(err)
	}
	j := h.job("g")
	if j.Status != api.JobSucceeded || j.EndTime == nil || j.Reason != "" {
		t.Fatalf("job = %+v, want succeeded", j)
	}
	if a := h.alloc("g-2"); a.FinishTime == nil || a.ExitCode == nil || *a.ExitCode != 0 {
		t.Fatalf("finished allocation = %+v", a)
	}
}

func TestAllocStatusRankFails(t *testing.T) {
	tests := []struct {
		name   string
		exit   int
		signal string
		reason string
	}{
		{"exit code", 3, "", "rank 1 failed on node n1: exit code 3"},
		{"signal", -1, "SIGKILL", "rank 1 failed on node n1: killed by SIGKILL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := gang(t)
			if err := report(h, "g-1", api.AllocFailed, tt.exit, tt.signal); err != nil {
				t.Fatal(err)
			}
			idx := h.index
			j := h.job("g")
			if j.Status != api.JobFailed || j.Reason != tt.reason || j.EndTime == nil || j.ModifyIndex != idx {
				t.Fatalf("job = %s %q, want failed %q", j.Status, j.Reason, tt.reason)
			}
			for _, id := range []string{"g-0", "g-2"} {
				if a := h.alloc(id); a.DesiredStatus != api.DesiredStop || a.Status != api.AllocRunning || a.ModifyIndex != idx {
					t.Errorf("%s = desired %s status %s, want stop, running", id, a.DesiredStatus, a.Status)
				}
			}
			if a := h.alloc("g-1"); a.DesiredStatus != api.DesiredRun || a.FinishTime == nil {
				t.Errorf("failed allocation = %+v", a)
			}

			// The other ranks now end; the job keeps its first reason.
			if err := report(h, "g-0", api.AllocFailed, 0, "SIGTERM"); err != nil {
				t.Fatal(err)
			}
			if err := report(h, "g-2", api.AllocSucceeded, 0, ""); err != nil {
				t.Fatal(err)
			}
			if j := h.job("g"); j.Status != api.JobFailed || j.Reason != tt.reason {
				t.Fatalf("job = %s %q after the other ranks ended", j.Status, j.Reason)
			}
		})
	}
}

func TestAllocStatusRejects(t *testing.T) {
	h := gang(t)
	if err, _ := report(h, "nope", api.AllocRunning, 0, "").(error); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown allocation: %v, want ErrNotFound", err)
	}
	for _, st := range []string{api.AllocLost, "exploded", ""} {
		if err, _ := report(h, "g-0", st, 0, "").(error); !errors.Is(err, ErrConflict) {
			t.Errorf("status %q: %v, want ErrConflict", st, err)
		}
	}
	if a := h.alloc("g-0"); a.Status != api.AllocRunning {
		t.Fatalf("rejected reports changed the allocation: %+v", a)
	}
}

func TestAllocStatusIgnoresRepeatsAndLateReports(t *testing.T) {
	h := gang(t)
	idx := h.snap().Index(TableAllocs)
	if err := report(h, "g-0", api.AllocRunning, 0, ""); err != nil {
		t.Fatal(err)
	}
	if got := h.snap().Index(TableAllocs); got != idx {
		t.Fatalf("a repeated report moved the allocs index from %d to %d", idx, got)
	}
	if err := report(h, "g-0", api.AllocSucceeded, 0, ""); err != nil {
		t.Fatal(err)
	}
	done := h.alloc("g-0")
	jobIdx := h.snap().Index(TableJobs)
	for _, st := range []string{api.AllocRunning, api.AllocFailed, api.AllocPending} {
		if err := report(h, "g-0", st, 9, ""); err != nil {
			t.Fatalf("late %s: %v", st, err)
		}
	}
	if a := h.alloc("g-0"); !reflect.DeepEqual(a, done) {
		t.Fatalf("late reports changed a terminal allocation:\n%+v\nwant\n%+v", a, done)
	}
	if j := h.job("g"); j.Status != api.JobRunning || h.snap().Index(TableJobs) != jobIdx {
		t.Fatalf("late reports changed the job: %+v", j)
	}
}

func TestCancelJob(t *testing.T) {
	h := gang(t)
	h.addJob("p", 1, 1)
	cancel := func(id string) error {
		err, _ := h.apply(CancelJobType, CancelJobRequest{JobID: id, Reason: "cancelled by alice", Time: t0}).(error)
		return err
	}
	if err := cancel("ghost"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cancel unknown: %v, want ErrNotFound", err)
	}

	if err := cancel("p"); err != nil {
		t.Fatal(err)
	}
	if j := h.job("p"); j.Status != api.JobCancelled || j.Reason != "cancelled by alice" || j.EndTime == nil {
		t.Fatalf("cancelled pending job = %+v", j)
	}
	if err := cancel("p"); !errors.Is(err, ErrConflict) {
		t.Fatalf("cancel twice: %v, want ErrConflict", err)
	}

	if err := report(h, "g-2", api.AllocSucceeded, 0, ""); err != nil {
		t.Fatal(err)
	}
	if err := cancel("g"); err != nil {
		t.Fatal(err)
	}
	idx := h.index
	if j := h.job("g"); j.Status != api.JobCancelled {
		t.Fatalf("job = %+v", j)
	}
	for _, id := range []string{"g-0", "g-1"} {
		if a := h.alloc(id); a.DesiredStatus != api.DesiredStop || a.ModifyIndex != idx {
			t.Errorf("%s: desired %s at %d, want stop at %d", id, a.DesiredStatus, a.ModifyIndex, idx)
		}
	}
	if a := h.alloc("g-2"); a.DesiredStatus != api.DesiredRun {
		t.Errorf("a finished allocation was asked to stop: %+v", a)
	}
	if got := h.snap().Index(TableAllocs); got != idx {
		t.Errorf("allocs index = %d, want %d", got, idx)
	}
	// Ranks stopping after the cancel leave the job cancelled.
	if err := report(h, "g-0", api.AllocFailed, 0, "SIGTERM"); err != nil {
		t.Fatal(err)
	}
	if j := h.job("g"); j.Status != api.JobCancelled || j.Reason != "cancelled by alice" {
		t.Fatalf("job = %+v", j)
	}
	if err := cancel("g"); !errors.Is(err, ErrConflict) {
		t.Fatalf("cancel a cancelled job: %v, want ErrConflict", err)
	}
}

func TestNodeStatus(t *testing.T) {
	h := gang(t)
	// A finished single-rank job on n2 stays as it was.
	h.addJob("done", 1, 1)
	h.run("done", on("n2", 1))
	if err := report(h, "done-0", api.AllocSucceeded, 0, ""); err != nil {
		t.Fatal(err)
	}
	doneAlloc := h.alloc("done-0")

	if err, _ := h.apply(NodeStatusType, NodeStatusRequest{NodeID: "id-n9", Status: api.NodeDown}).(error); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown node: %v, want ErrNotFound", err)
	}
	h.ok(NodeStatusType, NodeStatusRequest{NodeID: "id-n2", Status: api.NodeDown, Info: "missed heartbeats", Time: t0})
	idx := h.index
	n := h.snap().Node(nil, "id-n2")
	if n.Status != api.NodeDown || n.StatusInfo != "missed heartbeats" || n.ModifyIndex != idx {
		t.Fatalf("node = %+v", n)
	}
	lost := h.alloc("g-2")
	if lost.Status != api.AllocLost || lost.DesiredStatus != api.DesiredStop || lost.FinishTime == nil ||
		lost.Message != "node n2 is down: missed heartbeats" {
		t.Fatalf("allocation on the down node = %+v", lost)
	}
	j := h.job("g")
	if j.Status != api.JobFailed || j.Reason != "rank 2 lost on node n2: node n2 is down: missed heartbeats" {
		t.Fatalf("job = %s %q", j.Status, j.Reason)
	}
	for _, id := range []string{"g-0", "g-1"} {
		if a := h.alloc(id); a.Status != api.AllocRunning || a.DesiredStatus != api.DesiredStop {
			t.Errorf("%s on a live node = %s/%s, want running/stop", id, a.Status, a.DesiredStatus)
		}
	}
	if a := h.alloc("done-0"); !reflect.DeepEqual(a, doneAlloc) {
		t.Errorf("a finished allocation on the down node changed: %+v", a)
	}
	if j := h.job("done"); j.Status != api.JobSucceeded {
		t.Errorf("finished job = %s", j.Status)
	}
	for _, tbl := range []string{TableJobs, TableAllocs, TableNodes} {
		if got := h.snap().Index(tbl); got != idx {
			t.Errorf("%s index = %d, want %d", tbl, got, idx)
		}
	}

	// The same status again changes nothing.
	h.ok(NodeStatusType, NodeStatusRequest{NodeID: "id-n2", Status: api.NodeDown, Info: "still"})
	if got := h.snap().Index(TableNodes); got != idx {
		t.Fatalf("repeated status moved the nodes index to %d", got)
	}
	// Coming back ready touches only the node.
	h.ok(NodeStatusType, NodeStatusRequest{NodeID: "id-n2", Status: api.NodeReady})
	if n := h.snap().Node(nil, "id-n2"); n.Status != api.NodeReady || h.snap().Index(TableAllocs) != idx {
		t.Fatalf("node = %+v", n)
	}
}

func TestUpsertNode(t *testing.T) {
	h := newHarness(t)
	n := h.addNode("n1", 2)
	if n.Status != api.NodeReady || n.CreateIndex != 1 || !n.RegisterTime.Equal(t0) {
		t.Fatalf("node = %+v", n)
	}

	// Re-registering the same ID updates the inventory, keeps its history.
	again := testNode("n1", 4)
	again.RegisterTime = t0.Add(time.Hour)
	again.Status = api.NodeDown
	h.ok(UpsertNodeType, UpsertNodeRequest{Node: again})
	n = h.snap().Node(nil, "id-n1")
	if len(n.GPUs) != 4 || n.CreateIndex != 1 || n.ModifyIndex != 2 || !n.RegisterTime.Equal(t0) || n.Status != api.NodeReady {
		t.Fatalf("re-registered node = %+v", n)
	}

	// Another ID may not take the name of a live node.
	thief := testNode("n1", 8)
	thief.ID = "id-other"
	if err, _ := h.apply(UpsertNodeType, UpsertNodeRequest{Node: thief}).(error); !errors.Is(err, ErrConflict) {
		t.Fatalf("name taken from a live node: %v, want ErrConflict", err)
	}
	if got := h.snap().NodeByName(nil, "n1"); got.ID != "id-n1" || h.snap().Node(nil, "id-other") != nil {
		t.Fatalf("rejected upsert changed the nodes: %+v", got)
	}

	// Once the old node is down, a new incarnation takes over the name.
	h.ok(NodeStatusType, NodeStatusRequest{NodeID: "id-n1", Status: api.NodeDown})
	h.ok(UpsertNodeType, UpsertNodeRequest{Node: thief})
	if got := h.snap().NodeByName(nil, "n1"); got == nil || got.ID != "id-other" || got.Status != api.NodeReady {
		t.Fatalf("takeover: node n1 = %+v", got)
	}
	if h.snap().Node(nil, "id-n1") != nil {
		t.Fatal("the down incarnation is still in the store")
	}
	if nodes := h.snap().Nodes(nil); len(nodes) != 1 {
		t.Fatalf("%d nodes, want 1", len(nodes))
	}

	for _, bad := range []*api.Node{nil, {Name: "x"}, {ID: "x"}} {
		if err, _ := h.apply(UpsertNodeType, UpsertNodeRequest{Node: bad}).(error); err == nil {
			t.Errorf("upsert %+v accepted", bad)
		}
	}
}

// populated builds a store with every kind of object and state.
func populated(t *testing.T) *harness {
	h := gang(t)
	h.addJob("p", 2, 8)
	h.ok(ApplyPlanType, ApplyPlanRequest{Plan: Plan{Pending: []PendingReason{{JobID: "p", Reason: "cannot fit on this cluster: x"}}}})
	if err := report(h, "g-1", api.AllocFailed, 137, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	h.addNode("n3", 8)
	h.ok(NodeStatusType, NodeStatusRequest{NodeID: "id-n3", Status: api.NodeDown, Info: "gone", Time: t0})
	return h
}

func persist(t *testing.T, f *FSM) *memSink {
	t.Helper()
	s, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	sink := &memSink{}
	if err := s.Persist(sink); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	if !sink.closed || sink.cancelled {
		t.Fatalf("sink closed %v cancelled %v", sink.closed, sink.cancelled)
	}
	return sink
}

type dump struct {
	Jobs    []*api.Job
	Allocs  []*api.Allocation
	Nodes   []*api.Node
	Indexes map[string]uint64
}

func dumpOf(s *Snapshot) dump {
	d := dump{Jobs: s.Jobs(nil), Allocs: s.Allocs(nil), Nodes: s.Nodes(nil), Indexes: map[string]uint64{}}
	for _, tbl := range []string{TableJobs, TableAllocs, TableNodes} {
		d.Indexes[tbl] = s.Index(tbl)
	}
	return d
}

func TestSnapshotRoundTrip(t *testing.T) {
	h := populated(t)
	want := dumpOf(h.snap())
	sink := persist(t, h.fsm)

	// Writes after the snapshot was taken are not in it.
	h.addJob("later", 1, 1)

	restored := NewFSM(zaptest.NewLogger(t))
	if err := restored.Restore(readCloser(sink.Bytes())); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	got := dumpOf(restored.Store().Snapshot())
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("restored state differs:\n got %+v\nwant %+v", got, want)
	}
	if len(want.Jobs) != 2 || len(want.Allocs) != 3 || len(want.Nodes) != 3 || want.Indexes[TableNodes] == 0 {
		t.Fatalf("populated state is smaller than meant: %+v", want)
	}

	// The restored FSM goes on applying from where the snapshot was.
	h2 := &harness{t: t, fsm: restored, index: h.index}
	if err, _ := h2.apply(RegisterJobType, RegisterJobRequest{Job: testJob("g", 1, 1)}).(error); !errors.Is(err, ErrConflict) {
		t.Fatalf("restored store lost job g: %v", err)
	}
	h2.addJob("next", 1, 1)

	// An empty store round-trips too.
	empty := persist(t, NewFSM(zaptest.NewLogger(t)))
	if err := restored.Restore(readCloser(empty.Bytes())); err != nil {
		t.Fatal(err)
	}
	if d := dumpOf(restored.Store().Snapshot()); len(d.Jobs)+len(d.Allocs)+len(d.Nodes) != 0 || d.Indexes[TableJobs] != 0 {
		t.Fatalf("restore of an empty snapshot left %+v", d)
	}
}

func TestRestoreRefuses(t *testing.T) {
	good := persist(t, populated(t).fsm).String()
	lines := strings.SplitAfter(good, "\n")
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", "read header"},
		{"foreign format", `{"format":"raft-boltdb","version":1}` + "\n", `not an Ark state snapshot (format "raft-boltdb")`},
		{"not JSON", "PK\x03\x04 a zip file", "read header"},
		{"unknown version", strings.Replace(good, `"version":7`, `"version":8`, 1), "snapshot version 8 is not supported (this server reads versions 1 to 7)"},
		{"truncated mid-record", good[:len(good)/2], "truncated snapshot?"},
		{"truncated before trailer", strings.Join(lines[:len(lines)-2], ""), "truncated snapshot?"},
		{"record dropped", strings.Join(append(append([]string{}, lines[:2]...), lines[3:]...), ""), "trailer says"},
		{"empty record", lines[0] + "{}\n" + lines[len(lines)-2], "record 0 is empty"},
		{"unknown record field", lines[0] + `{"acl":{}}` + "\n", "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := populated(t)
			before := dumpOf(h.snap())
			err := h.fsm.Restore(readCloser([]byte(tt.in)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Restore = %v, want an error containing %q", err, tt.want)
			}
			if after := dumpOf(h.snap()); !reflect.DeepEqual(after, before) {
				t.Fatal("a refused restore changed the store")
			}
		})
	}
}

// errSink fails every write.
type errSink struct{ memSink }

func (s *errSink) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestPersistFailureCancelsSink(t *testing.T) {
	// More than the writer's buffer, so a write reaches the sink before Flush.
	h := newHarness(t)
	for i := 0; i < 3; i++ {
		h.addJob(string(rune('a'+i)), 1, 1)
	}
	s, _ := h.fsm.Snapshot()
	sink := &errSink{}
	if err := s.Persist(sink); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Persist = %v", err)
	}
	if !sink.cancelled || sink.closed {
		t.Fatalf("sink cancelled %v closed %v, want cancelled only", sink.cancelled, sink.closed)
	}
}

func TestBlocking(t *testing.T) {
	h := newHarness(t)
	h.addJob("a", 1, 1)
	store := h.fsm.Store()
	jobsQuery := func(ws memdb.WatchSet, snap *Snapshot) (uint64, error) {
		snap.Jobs(ws)
		return snap.Index(TableJobs), nil
	}

	t.Run("no minimum answers at once", func(t *testing.T) {
		idx, err := store.Blocking(context.Background(), 0, jobsQuery)
		if err != nil || idx != 1 {
			t.Fatalf("Blocking = %d, %v", idx, err)
		}
	})

	t.Run("timeout returns the current index", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		start := time.Now()
		idx, err := store.Blocking(ctx, 1, jobsQuery)
		if err != nil || idx != 1 {
			t.Fatalf("Blocking = %d, %v; want 1, nil", idx, err)
		}
		if time.Since(start) < 25*time.Millisecond {
			t.Fatalf("returned after %v, before the timeout", time.Since(start))
		}
	})

	t.Run("wakes on a write", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		var idx uint64
		var err error
		min := h.index
		wg.Add(1)
		go func() {
			defer wg.Done()
			idx, err = store.Blocking(ctx, min, jobsQuery)
		}()
		h.addJob("b", 1, 1)
		wg.Wait()
		if err != nil || idx != h.index {
			t.Fatalf("Blocking = %d, %v; want %d", idx, err, h.index)
		}
		if ctx.Err() != nil {
			t.Fatal("Blocking waited for its timeout instead of the write")
		}
	})

	t.Run("wakes on restore", func(t *testing.T) {
		snap := persist(t, populated(t).fsm)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done := make(chan uint64)
		min := h.index
		go func() {
			idx, _ := store.Blocking(ctx, min, func(ws memdb.WatchSet, s *Snapshot) (uint64, error) {
				s.Jobs(ws)
				return s.LatestIndex(), nil
			})
			done <- idx
		}()
		if err := h.fsm.Restore(readCloser(snap.Bytes())); err != nil {
			t.Fatal(err)
		}
		if idx := <-done; idx <= min || ctx.Err() != nil {
			t.Fatalf("Blocking after restore = %d (min %d), ctx %v", idx, min, ctx.Err())
		}
	})

	t.Run("query error", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := store.Blocking(context.Background(), 99, func(memdb.WatchSet, *Snapshot) (uint64, error) { return 0, boom })
		if !errors.Is(err, boom) {
			t.Fatalf("Blocking = %v", err)
		}
	})
}

func TestApplyIgnoresNonCommands(t *testing.T) {
	h := newHarness(t)
	data, _ := Encode(RegisterJobType, RegisterJobRequest{Job: testJob("a", 1, 1)})
	if r := h.fsm.Apply(&raft.Log{Index: 1, Type: raft.LogNoop, Data: []byte{0}}); r != nil {
		t.Fatalf("noop applied: %v", r)
	}
	if r, ok := h.fsm.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: data}).(*RegisterJobResponse); !ok || r.ID != "a" || r.Existing {
		t.Fatalf("register: %#v", r)
	}
	if j := h.job("a"); j.CreateIndex != 2 {
		t.Fatalf("job created at %d, want 2", j.CreateIndex)
	}
}

func TestMessageTypeString(t *testing.T) {
	for typ, want := range map[MessageType]string{
		RegisterJobType: "RegisterJob", CancelJobType: "CancelJob", UpsertNodeType: "UpsertNode",
		NodeStatusType: "NodeStatus", ApplyPlanType: "ApplyPlan", AllocStatusType: "AllocStatus", GCJobsType: "GCJobs",
		99: "MessageType(99)",
	} {
		if got := typ.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", typ, got, want)
		}
	}
	// The values are part of the log format: never renumber.
	if RegisterJobType != 1 || CancelJobType != 2 || UpsertNodeType != 3 || NodeStatusType != 4 || ApplyPlanType != 5 || AllocStatusType != 6 ||
		GCJobsType != 11 {
		t.Fatal("message type values changed")
	}
}

func TestJobsByStatus(t *testing.T) {
	h := newHarness(t)
	for i, p := range []int{10, 90, 50, 90} {
		j := testJob(string(rune('a'+i)), 1, 1)
		j.Priority = p
		h.ok(RegisterJobType, RegisterJobRequest{Job: j})
	}
	ids := jobIDs(h.snap().JobsByStatus(nil, api.JobPending))
	if want := []string{"b", "d", "c", "a"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("pending order %v, want %v (priority, then age)", ids, want)
	}
	if got := h.snap().JobsByStatus(nil, api.JobRunning); len(got) != 0 {
		t.Fatalf("running jobs %v", got)
	}
}

// TestPersistWhileApplying persists snapshots while entries apply, as Raft
// does; -race checks that applies never change what a snapshot holds, and
// each snapshot restores to a consistent state.
func TestPersistWhileApplying(t *testing.T) {
	h := gang(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			s, _ := h.fsm.Snapshot()
			sink := &memSink{}
			if err := s.Persist(sink); err != nil {
				errs <- err
				return
			}
			if err := NewFSM(zaptest.NewLogger(t)).Restore(readCloser(sink.Bytes())); err != nil {
				errs <- err
				return
			}
		}
	}()
	for i := 0; i < 30; i++ {
		id := "j" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		h.addJob(id, 1, 1)
		h.ok(ApplyPlanType, ApplyPlanRequest{Plan: Plan{Pending: []PendingReason{{JobID: id, Reason: "waiting"}}}})
		h.ok(CancelJobType, CancelJobRequest{JobID: id, Reason: "r"})
	}
	_ = report(h, "g-0", api.AllocFailed, 1, "")
	h.ok(NodeStatusType, NodeStatusRequest{NodeID: "id-n2", Status: api.NodeDown})
	cancel()
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// TestRegisterJobIdempotent: a submission retried with the same token (a
// lost answer, a failover) yields the first job, never a second one.
func TestRegisterJobIdempotent(t *testing.T) {
	h := newHarness(t)
	first := testJob("a", 1, 1)
	first.SubmitToken = "tok-1"
	r1 := h.ok(RegisterJobType, RegisterJobRequest{Job: first}).(*RegisterJobResponse)
	retry := testJob("a-retry", 1, 1) // the retry carries a new ID, as the leader picks one each time
	retry.SubmitToken = "tok-1"
	r2 := h.ok(RegisterJobType, RegisterJobRequest{Job: retry}).(*RegisterJobResponse)
	if r1.ID != "a" || r1.Existing || r2.ID != "a" || !r2.Existing {
		t.Fatalf("first %+v, retry %+v", r1, r2)
	}
	if h.fsm.Store().Snapshot().Job(nil, "a-retry") != nil {
		t.Fatal("the retry created a second job")
	}
	other := testJob("b", 1, 1)
	other.SubmitToken = "tok-2"
	if r := h.ok(RegisterJobType, RegisterJobRequest{Job: other}).(*RegisterJobResponse); r.ID != "b" || r.Existing {
		t.Fatalf("another token: %+v", r)
	}
	// Jobs without a token are never deduplicated.
	h.ok(RegisterJobType, RegisterJobRequest{Job: testJob("c", 1, 1)})
	h.ok(RegisterJobType, RegisterJobRequest{Job: testJob("d", 1, 1)})
	if n := len(h.fsm.Store().Snapshot().Jobs(nil)); n != 4 {
		t.Fatalf("%d jobs, want 4", n)
	}
}

// FuzzReadSnapshot: a snapshot file comes from outside (ark operator
// snapshot restore): reading one never panics, and what it accepts writes
// back out to a snapshot that reads again.
func FuzzReadSnapshot(f *testing.F) {
	h := newHarness(&testing.T{})
	h.addNode("n1", 2)
	h.addJob("a", 1, 1)
	var good bytes.Buffer
	if err := WriteSnapshot(&good, h.snap()); err != nil {
		f.Fatal(err)
	}
	f.Add(good.Bytes())
	f.Add([]byte(`{"format":"ark-state","version":1}` + "\n" + `{"end":0}` + "\n"))
	f.Add([]byte(`{"format":"ark-state","version":2}`))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		db, err := readSnapshot(bytes.NewReader(data))
		if err != nil {
			return
		}
		s := &Store{db: db, abandon: make(chan struct{})}
		var out bytes.Buffer
		if err := WriteSnapshot(&out, s.Snapshot()); err != nil {
			t.Fatalf("write back: %v", err)
		}
		if err := CheckSnapshot(&out); err != nil {
			t.Fatalf("an accepted snapshot written back does not read: %v", err)
		}
	})
}
