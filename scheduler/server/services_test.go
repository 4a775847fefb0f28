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
