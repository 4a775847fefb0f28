package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestServiceEndpoint calls /v1/services/{job}/... of a real server in
// front of two real HTTP replicas: 503 with a reason until a replica is
// ready, then forwarded with the path, query and body, the caller's token
// not passed on; the least busy replica gets the next request; a replica
// that refuses connections is skipped for the other.
func TestServiceEndpoint(t *testing.T) {
	s, c := testServer(t, "")
	ctx := context.Background()
	if _, err := c.RegisterNode(ctx, fakeNode("a", 2)); err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(map[string]any{"name": "svc", "kind": "inference", "replicas": 2,
		"resources": map[string]any{"gpus": 1},
		"task":      map[string]any{"driver": "exec", "exec": map[string]any{"command": []string{"serve"}}}})
	sub, err := c.SubmitJob(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	var job *api.Job
	waitUntil(t, 10*time.Second, "both replicas placed", func() bool {
		job, _, err = c.Job(ctx, sub.ID, 0, 0)
		return err == nil && len(job.Allocations) == 2
	})
	base := "http://" + s.HTTPAddr() + "/v1/services/" + sub.ID
	call := func(method, path, body string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer secret-of-the-caller")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	if code, body, _ := call("GET", "/v1/models", ""); code != 503 || !strings.Contains(body, "has no ready replica (2 of 2 placed, none passed its health check)") {
		t.Fatalf("before any replica is ready: %d %s", code, body)
	}

	// Two replicas on their allocated ports; /slow holds until released.
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	servers := map[int]*http.Server{}
	for _, a := range job.Allocations {
		rank := a.Rank
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port)))
		if err != nil {
			t.Fatalf("replica port %d: %v", a.Port, err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				entered <- struct{}{}
				<-release
			}
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "rank=%d %s %s?%s body=%q auth=%q", rank, r.Method, r.URL.Path, r.URL.RawQuery, b, r.Header.Get("Authorization"))
		})}
		go srv.Serve(ln)
		servers[rank] = srv
		t.Cleanup(func() { srv.Close() })
		ready := true
		if err := c.UpdateAllocStatus(ctx, a.ID, api.AllocStatusUpdate{Status: api.AllocRunning, Ready: &ready}); err != nil {
			t.Fatal(err)
		}
	}

	code, body, _ := call("POST", "/v1/chat/completions?stream=1", `{"prompt":"hi"}`)
	if code != 200 || body != `rank=0 POST /v1/chat/completions?stream=1 body="{\"prompt\":\"hi\"}" auth=""` {
		t.Fatalf("forwarded call: %d %q", code, body)
	}

	// Rank 0 holds a request: the next goes to rank 1.
	slow := make(chan string, 1)
	go func() { _, b, _ := call("GET", "/slow", ""); slow <- b }()
	<-entered
	if _, body, _ := call("GET", "/who", ""); !strings.HasPrefix(body, "rank=1 ") {
		t.Fatalf("with rank 0 busy, the call went to %q", body)
	}
	close(release)
	if b := <-slow; !strings.HasPrefix(b, "rank=0 GET /slow") {
		t.Fatalf("slow call answered %q", b)
	}

	// Rank 0 stops listening: calls go to rank 1, none fails.
	servers[0].Close()
	for i := range 5 {
		if code, body, _ := call("GET", "/who", ""); code != 200 || !strings.HasPrefix(body, "rank=1 ") {
			t.Fatalf("call %d with rank 0 down: %d %q", i, code, body)
		}
	}
	// Both down: 503 naming the replicas' errors.
	servers[1].Close()
	if code, body, _ := call("GET", "/who", ""); code != 503 || !strings.Contains(body, "no ready replica answered") {
		t.Fatalf("with both replicas down: %d %q", code, body)
	}
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServicePickAffinity: a request naming a model goes to a replica that
// answered one for it before (it has the adapter loaded) unless that
// replica has more than affinitySlack requests more in flight than the
// least loaded one; without a model, least outstanding requests decide.
func TestServicePickAffinity(t *testing.T) {
	targets := []replicaTarget{{alloc: &api.Allocation{ID: "r0", Rank: 0}}, {alloc: &api.Allocation{ID: "r1", Rank: 1}}, {alloc: &api.Allocation{ID: "r2", Rank: 2}}}
	var p serviceProxy
	p.answered("r2", "legal", targets)
	cases := []struct {
		inflight map[string]int
		model    string
		want     string
	}{
		{nil, "", "r0"},                                   // least outstanding, lowest rank
		{nil, "legal", "r2"},                              // warm replica, same load
		{map[string]int{"r2": 1}, "legal", "r2"},          // warm within the slack
		{map[string]int{"r2": 2}, "legal", "r0"},          // warm but too busy
		{map[string]int{"r0": 3, "r1": 3}, "legal", "r2"}, // warm and least loaded
		{nil, "medical", "r0"},                            // nobody has it: least outstanding
	}
	for _, tc := range cases {
		p.inflight = map[string]int{}
		for k, v := range tc.inflight {
			p.inflight[k] = v
		}
		got, done := p.pick(targets, map[string]bool{}, tc.model)
		if got.alloc.ID != tc.want {
			t.Errorf("inflight %v model %q: picked %s, want %s", tc.inflight, tc.model, got.alloc.ID, tc.want)
		}
		done()
	}
	// A tried replica is never picked again, warm or not.
	if got, _ := p.pick(targets, map[string]bool{"r2": true}, "legal"); got.alloc.ID != "r0" {
		t.Errorf("after r2 failed: picked %s, want r0", got.alloc.ID)
	}
	if requestModel([]byte(`{"model":"legal","prompt":"x"}`)) != "legal" || requestModel([]byte(`not json`)) != "" {
		t.Error("requestModel does not read the model field")
	}
}
