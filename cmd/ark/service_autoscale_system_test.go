package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/internal/testenv"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// TestSystemServiceAutoscale: real server, agents and replica processes.
// Load through the endpoint scales an autoscaled service out to its max
// without a failed call; idle, it scales in and then to zero; a request
// to it at zero waits for a replica and is answered.
func TestSystemServiceAutoscale(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	// Eight callers in a closed loop and three replicas: CPU-bound enough
	// that, run beside the other heavy tests under -race, both agents once
	// missed a 6 s heartbeat TTL and the replica was marked down mid-test.
	cpuHeavy(t)
	s := newSrv(t)
	s.start(t, "--heartbeat-ttl", "9s") // agents heartbeat (and send loads) every 3s
	startAgents(t, s.http, "2xH200:141Gi", []string{"a", "b"})
	c, err := client.New(s.http)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := submitSpec(t, s.http, `name: auto
kind: inference
replicas: 1
resources: {gpus: 1, cpu: 100m, memory: 64Mi}
autoscale: {min: 0, max: 3, target: {queueDepth: 2}, scaleOutAfter: 2s, scaleInAfter: 3s, idleToZero: 5s, wakeTimeout: 60s}
task:
  driver: exec
  exec: {command: [ark, example, http-service, --message, auto, --delay, 200ms]}
  health: {http: {path: /v1/health}, interval: 250ms, timeout: 250ms, failures: 10}
`)
	endpoint := "http://" + s.http + "/v1/services/" + id + "/v1/completions"
	ready := func() (ready, asked int) {
		j, _, err := c.Job(ctx, id, 0, 0)
		if err != nil {
			return -1, -1
		}
		for _, a := range j.Allocations {
			if a.Serving() && a.Ready {
				ready++
			}
		}
		return ready, j.Spec.Replicas
	}
	waitUntil(t, 60*time.Second, "1 ready replica", func() bool { r, _ := ready(); return r == 1 })

	// Eight callers in a closed loop keep 8 requests in flight: 8 per
	// replica against a target of 2, so it scales out to its max of 3.
	loop := startLoop(t, endpoint, 8)
	start := time.Now()
	waitUntil(t, 60*time.Second, "3 ready replicas under load", func() bool { r, n := ready(); return r == 3 && n == 3 })
	t.Logf("FIGURE scale out 1 -> 3 under load (scaleOutAfter 2s): %s to 3 ready replicas", time.Since(start).Round(10*time.Millisecond))
	st, _ := cli(t, s.http, "job", "status", id)
	if !strings.Contains(st, "to 3 replicas: queue depth") { // from 1, or from 2 when the first reports caught fewer calls
		t.Errorf("job status does not say why it scaled:\n%s", st)
	}
	loop.halt()
	loop.check(t, "the scale-out")

	// Idle: in to 1 after scaleInAfter, to zero after idleToZero.
	idle := time.Now()
	waitUntil(t, 60*time.Second, "scaled to zero", func() bool { _, n := ready(); return n == 0 })
	t.Logf("FIGURE idle -> scaled to zero: %s (scaleInAfter 3s, idleToZero 5s)", time.Since(idle).Round(10*time.Millisecond))
	waitUntil(t, 30*time.Second, "every replica stopped", func() bool { r, _ := ready(); return r == 0 })

	// A request at zero waits for a replica and is answered.
	hc := &http.Client{Timeout: testenv.Scale(90 * time.Second)}
	woke := time.Now()
	resp, err := hc.Post(endpoint, "application/json", strings.NewReader(`{"prompt":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"message":"auto"`) {
		t.Fatalf("request to the service at zero: %d %s", resp.StatusCode, body)
	}
	t.Logf("FIGURE first request to a service at zero answered after %s (cold start of one replica)", time.Since(woke).Round(10*time.Millisecond))
	if _, n := ready(); n != 1 {
		t.Fatalf("after the wake the service asks %d replicas, want 1", n)
	}
}
