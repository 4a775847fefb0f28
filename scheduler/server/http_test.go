package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/scheduler/state"
)

func do(t *testing.T, method, url string, body []byte) (int, api.Error) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e api.Error
	if resp.StatusCode >= 300 {
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("%s %s: error body is not JSON {\"error\":...}: %q", method, url, raw)
		}
		if e.Error == "" {
			t.Fatalf("%s %s: empty error message", method, url)
		}
	}
	return resp.StatusCode, e
}

// TestBadInput sends every kind of bad request and checks the status code,
// that the error names what is wrong, and that the state did not change.
func TestBadInput(t *testing.T) {
	s, c := testServer(t, "")
	base := "http://" + s.HTTPAddr()
	ctx := context.Background()
	if _, err := c.RegisterNode(ctx, fakeNode("n1", 4)); err != nil {
		t.Fatal(err)
	}
	spec := func(mut string) []byte {
		return []byte(strings.Replace(`{"name":"x","kind":"batch","replicas":1,"resources":{"gpus":1},"task":{"driver":"exec","exec":{"command":["true"]}}}`, `"replicas":1`, mut, 1))
	}
	big := append([]byte(`{"name":"`), bytes.Repeat([]byte("a"), 2<<20)...)
	big = append(big, []byte(`"}`)...)
	cases := []struct {
		name   string
		method string
		path   string
		body   []byte
		code   int
		want   string
	}{
		{"unknown field", "POST", "/v1/jobs", spec(`"replicas":1,"bogus":true`), 400, "bogus: unknown field"},
		{"unknown nested field", "POST", "/v1/jobs", []byte(`{"name":"x","kind":"batch","resources":{"gpus":1,"gpu":2},"task":{"driver":"exec","exec":{"command":["true"]}}}`), 400, `resources.gpu: unknown field (did you mean "gpus"?)`},
		{"wrong type", "POST", "/v1/jobs", spec(`"replicas":"two"`), 400, "replicas: must be an integer"},
		{"negative gpus", "POST", "/v1/jobs", []byte(`{"name":"x","kind":"batch","resources":{"gpus":-1},"task":{"driver":"exec","exec":{"command":["true"]}}}`), 400, "resources.gpus: must be >= 1, got -1"},
		{"zero gpus", "POST", "/v1/jobs", []byte(`{"name":"x","kind":"batch","resources":{"gpus":0},"task":{"driver":"exec","exec":{"command":["true"]}}}`), 400, "resources.gpus: must be >= 1, got 0"},
		{"negative replicas", "POST", "/v1/jobs", spec(`"replicas":-2`), 400, "replicas: must be >= 1, got -2"},
		{"unknown kind", "POST", "/v1/jobs", spec(`"replicas":1,"kind":"train"`), 400, "duplicate"},
		{"unknown driver", "POST", "/v1/jobs", []byte(`{"name":"x","kind":"batch","resources":{"gpus":1},"task":{"driver":"docker"}}`), 400, `task.driver: must be exec or builtin, got "docker"`},
		{"invalid JSON", "POST", "/v1/jobs", []byte(`{"name":`), 400, "malformed spec"},
		{"empty body", "POST", "/v1/jobs", nil, 400, "spec is empty"},
		{"oversized body", "POST", "/v1/jobs", big, 413, "larger than the limit"},
		{"cancel unknown job", "DELETE", "/v1/jobs/nope", nil, 404, `job "nope"`},
		{"get unknown job", "GET", "/v1/jobs/nope", nil, 404, `job "nope"`},
		{"unknown route", "GET", "/v1/nope", nil, 404, "no route"},
		{"node without name", "POST", "/v1/nodes/register", []byte(`{"address":"127.0.0.1","cpuMilli":1000,"memoryBytes":1}`), 400, "name: is required"},
		{"node with a bad fabric", "POST", "/v1/nodes/register", []byte(`{"name":"n9","address":"127.0.0.1","cpuMilli":1000,"memoryBytes":1,"fabric":"rack 1"}`), 400,
			`fabric: must be at most 63 characters without spaces or slashes, got "rack 1"`},
		{"node unknown field", "POST", "/v1/nodes/register", []byte(`{"name":"n","gpuz":1}`), 400, "unknown field"},
		{"heartbeat unknown node", "PUT", "/v1/nodes/nope/heartbeat", []byte(`{}`), 404, "not registered"},
		{"status of unknown alloc", "PUT", "/v1/allocations/nope/status", []byte(`{"status":"running"}`), 404, `allocation "nope"`},
		{"bad alloc status", "PUT", "/v1/allocations/nope/status", []byte(`{"status":"lost"}`), 400, "status: must be one of"},
		{"bad blocking index", "GET", "/v1/jobs?index=-1", nil, 400, "query parameter index"},
		{"bad blocking wait", "GET", "/v1/jobs?index=1&wait=forever", nil, 400, "query parameter wait"},
	}
	// The kind case checks a duplicate key, which YAML/JSON decoding rejects.
	cases[6].want = `"kind"`
	before := s.Store().Snapshot().LatestIndex()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, e := do(t, tc.method, base+tc.path, tc.body)
			if code != tc.code {
				t.Fatalf("status = %d, want %d (error %q)", code, tc.code, e.Error)
			}
			msg := e.Error
			for _, f := range e.Fields {
				msg += "\n" + f.Error()
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not mention %q", msg, tc.want)
			}
		})
	}
	if after := s.Store().Snapshot().LatestIndex(); after != before {
		t.Errorf("bad requests changed the state: index %d -> %d", before, after)
	}
}

func TestUnknownKindAndFieldPaths(t *testing.T) {
	s, _ := testServer(t, "")
	body := []byte(`{"name":"Bad Name","kind":"train","replicas":-1,"resources":{"gpus":0},"task":{"driver":"exec","exec":{"command":[]}}}`)
	code, e := do(t, "POST", "http://"+s.HTTPAddr()+"/v1/jobs", body)
	if code != 400 {
		t.Fatalf("status %d", code)
	}
	want := map[string]bool{"name": false, "kind": false, "replicas": false, "resources.gpus": false, "task.exec.command": false}
	for _, f := range e.Fields {
		if _, ok := want[f.Path]; ok {
			want[f.Path] = true
		}
	}
	for p, seen := range want {
		if !seen {
			t.Errorf("no field error for %s in %+v", p, e.Fields)
		}
	}
}

// TestImpossibleJobPendsWithReason: a job asking for more GPUs than any node
// has is accepted, and stays pending with a reason that says so.
func TestImpossibleJobPendsWithReason(t *testing.T) {
	_, c := testServer(t, "")
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		if _, err := c.RegisterNode(ctx, fakeNode(n, 4)); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := c.SubmitJob(ctx, []byte(`{"name":"huge","kind":"finetune","replicas":1,"resources":{"gpus":64},"task":{"driver":"exec","exec":{"command":["true"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	var job *api.Job
	waitFor(t, 5*time.Second, "pending reason", func() bool {
		job, _, err = c.Job(ctx, resp.ID, 0, 0)
		return err == nil && job.Reason != ""
	})
	if job.Status != api.JobPending || !strings.Contains(job.Reason, "cannot fit on this cluster") || !strings.Contains(job.Reason, "largest ready node has 4") {
		t.Errorf("job %s: %s", job.Status, job.Reason)
	}
}

func TestCancelStopsAllocations(t *testing.T) {
	_, c := testServer(t, "")
	ctx := context.Background()
	reg, err := c.RegisterNode(ctx, fakeNode("a", 4))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.SubmitJob(ctx, []byte(gangSpec))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "allocations", func() bool {
		allocs, _, err := c.NodeAllocations(ctx, reg.ID, 0, 0)
		return err == nil && len(allocs) == 2
	})
	if err := c.CancelJob(ctx, resp.ID); err != nil {
		t.Fatal(err)
	}
	job, _, err := c.Job(ctx, resp.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != api.JobCancelled {
		t.Errorf("status %s, want cancelled", job.Status)
	}
	for _, a := range job.Allocations {
		if a.DesiredStatus != api.DesiredStop {
			t.Errorf("alloc %s desired %s, want stop", a.ID, a.DesiredStatus)
		}
	}
	// A second cancel is a conflict, not a success.
	var ae *client.APIError
	if err := c.CancelJob(ctx, resp.ID); err == nil || !asAPIError(err, &ae) || ae.StatusCode != 409 {
		t.Errorf("second cancel: %v, want 409", err)
	}
}

func asAPIError(err error, target **client.APIError) bool {
	ae, ok := err.(*client.APIError)
	if ok {
		*target = ae
	}
	return ok
}

// TestBlockingAllocations: a blocking query returns as soon as the node's
// allocations change, and returns the same index after the wait otherwise.
func TestBlockingAllocations(t *testing.T) {
	_, c := testServer(t, "")
	ctx := context.Background()
	reg, err := c.RegisterNode(ctx, fakeNode("a", 4))
	if err != nil {
		t.Fatal(err)
	}
	_, idx, err := c.NodeAllocations(ctx, reg.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, idx2, err := c.NodeAllocations(ctx, reg.ID, idx, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if idx2 != idx || time.Since(start) < 150*time.Millisecond {
		t.Errorf("idle blocking query: index %d -> %d after %s", idx, idx2, time.Since(start))
	}
	got := make(chan []*api.Allocation, 1)
	go func() {
		allocs, _, _ := c.NodeAllocations(ctx, reg.ID, idx, 10*time.Second)
		got <- allocs
	}()
	time.Sleep(50 * time.Millisecond)
	if _, err := c.SubmitJob(ctx, []byte(gangSpec)); err != nil {
		t.Fatal(err)
	}
	select {
	case allocs := <-got:
		if len(allocs) != 2 {
			t.Errorf("woke with %d allocations, want 2", len(allocs))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocking query did not wake on a new allocation")
	}
}

// TestBlockingAllocationsIgnoreOtherNodes: a node's long-poll does not
// answer when only another node's allocations change. It answered with the
// allocation table's index, so after any write anywhere every agent's next
// poll returned at once: at 10,000 nodes the agents polled without pause.
func TestBlockingAllocationsIgnoreOtherNodes(t *testing.T) {
	_, c := testServer(t, "")
	ctx := context.Background()
	a, err := c.RegisterNode(ctx, fakeNode("a", 4))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.RegisterNode(ctx, fakeNode("b", 4))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.SubmitJob(ctx, []byte(`{"name":"one","kind":"finetune","resources":{"gpus":4},"task":{"driver":"exec","exec":{"command":["true"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	other := ""
	waitFor(t, 5*time.Second, "the job placed", func() bool {
		for _, n := range [][2]string{{a.ID, b.ID}, {b.ID, a.ID}} {
			if allocs, _, err := c.NodeAllocations(ctx, n[0], 0, 0); err == nil && len(allocs) == 1 {
				other = n[1]
				return true
			}
		}
		return false
	})
	_, idx, err := c.NodeAllocations(ctx, other, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		idx uint64
		err error
	}
	got := make(chan answer, 1)
	go func() {
		_, i, err := c.NodeAllocations(ctx, other, idx, time.Second)
		got <- answer{i, err}
	}()
	time.Sleep(100 * time.Millisecond)
	// The busy node's allocation changes (asked to stop); the idle
	// node's list does not.
	if err := c.CancelJob(ctx, resp.ID); err != nil {
		t.Fatal(err)
	}
	if ans := <-got; ans.err != nil || ans.idx != idx {
		t.Errorf("idle node's long-poll answered index %d (%v) after another node's allocation changed, want %d at the end of its wait", ans.idx, ans.err, idx)
	}
}

// TestNodeMissingHeartbeatsLosesAllocations: a node that stops heartbeating
// is marked down, its allocations lost and the gang failed.
func TestNodeMissingHeartbeatsLosesAllocations(t *testing.T) {
	s, c := testServerTTL(t, "", 2*time.Second)
	ctx := context.Background()
	reg, err := c.RegisterNode(ctx, fakeNode("a", 4))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.SubmitJob(ctx, []byte(gangSpec))
	if err != nil {
		t.Fatal(err)
	}
	// TTL is 2s in testServer; a new leader gives one extra TTL of grace.
	var job *api.Job
	waitFor(t, 10*time.Second, "job failed", func() bool {
		job, _, err = c.Job(ctx, resp.ID, 0, 0)
		return err == nil && job.Status == api.JobFailed
	})
	if !strings.Contains(job.Reason, "lost") {
		t.Errorf("reason %q does not say the rank was lost", job.Reason)
	}
	n := s.Store().Snapshot().Node(nil, reg.ID)
	if n.Status != api.NodeDown {
		t.Errorf("node status %s, want down", n.Status)
	}
	// A heartbeat brings it back.
	if _, err := c.Heartbeat(ctx, reg.ID); err != nil {
		t.Fatal(err)
	}
	if n := s.Store().Snapshot().Node(nil, reg.ID); n.Status != api.NodeReady {
		t.Errorf("after heartbeat node is %s", n.Status)
	}
}

// TestRestartKeepsHistory: a server restarted on the same data dir serves
// every job it acknowledged before.
func TestRestartKeepsHistory(t *testing.T) {
	dir := t.TempDir()
	var ids []string
	func() {
		s, c := testServer(t, dir)
		for i := 0; i < 5; i++ {
			resp, err := c.SubmitJob(context.Background(), []byte(gangSpec))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, resp.ID)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	s, c := testServer(t, dir)
	_ = s
	for _, id := range ids {
		if _, _, err := c.Job(context.Background(), id, 0, 0); err != nil {
			t.Errorf("job %s after restart: %v", id, err)
		}
	}
	if n := len(s.Store().Snapshot().JobsByStatus(nil, api.JobPending)); n != len(ids) {
		t.Errorf("%d pending jobs after restart, want %d", n, len(ids))
	}
	_ = state.TableJobs
}

func TestSubmitIdempotencyKey(t *testing.T) {
	_, c := testServer(t, "")
	ctx := context.Background()
	r1, err := c.SubmitJobWithKey(ctx, []byte(gangSpec), "key-1")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := c.SubmitJobWithKey(ctx, []byte(gangSpec), "key-1")
	if err != nil {
		t.Fatal(err)
	}
	r3, err := c.SubmitJob(ctx, []byte(gangSpec))
	if err != nil {
		t.Fatal(err)
	}
	if r1.ID != r2.ID || r3.ID == r1.ID {
		t.Errorf("same key gave %s and %s; a fresh key gave %s", r1.ID, r2.ID, r3.ID)
	}
	jobs, err := c.Jobs(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 {
		t.Errorf("%d jobs, want 2", len(jobs))
	}
}

// TestJobEventsAPI: GET /v1/jobs/{id} carries the job's events as the
// state machine recorded them; the job list leaves them out.
func TestJobEventsAPI(t *testing.T) {
	_, c := testServer(t, "")
	ctx := context.Background()
	r, err := c.SubmitJob(ctx, []byte(gangSpec))
	if err != nil {
		t.Fatal(err)
	}
	j, _, err := c.Job(ctx, r.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Events) == 0 || j.Events[0].Type != api.EventSubmitted || j.Events[0].Index != j.CreateIndex || !j.Events[0].Time.Equal(j.SubmitTime) {
		t.Fatalf("events %+v, want the submission first (index %d, time %s)", j.Events, j.CreateIndex, j.SubmitTime)
	}
	jobs, err := c.Jobs(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].Events != nil {
		t.Errorf("job list %+v: want one job without events", jobs)
	}
}
