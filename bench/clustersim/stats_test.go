package clustersim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
)

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100..1, unsorted
	}
	for _, c := range []struct {
		name string
		v    []float64
		p    float64
		want float64
	}{
		{"empty", nil, 0.5, 0},
		{"one", []float64{7}, 0.99, 7},
		{"p50 of 1..100", hundred, 0.50, 50},
		{"p99 of 1..100", hundred, 0.99, 99},
		{"p100", hundred, 1, 100},
		{"p50 of two", []float64{3, 1}, 0.5, 1},
		{"p99 of three", []float64{1, 2, 3}, 0.99, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Percentile(c.v, c.p); got != c.want {
				t.Errorf("Percentile(%v) = %v, want %v", c.p, got, c.want)
			}
		})
	}
}

func TestTrackerDemandAndLatency(t *testing.T) {
	tr := newTracker(8000) // one node
	never := func() bool { return false }
	gang := Shape{Class: ClassGang, Replicas: 2, GPUs: 2} // 4 GPUs
	share := Shape{Class: ClassShared, Replicas: 1, GPUs: 1, GPUMilli: 500}
	t0 := time.Unix(1000, 0)

	room, ok := tr.reserve(gang, 0.9, never)
	if !room || !ok {
		t.Fatalf("reserve of half the cluster: room %v ok %v", room, ok)
	}
	// A rank runs before the submit answer is back: it still counts.
	tr.seen("g", t0.Add(200*time.Millisecond))
	tr.running("g", t0.Add(300*time.Millisecond))
	tr.seen("g", t0.Add(600*time.Millisecond))
	tr.submitted("g", gang, t0, room)
	tr.running("g", t0.Add(700*time.Millisecond))

	if room, _ := tr.reserve(Shape{Replicas: 1, GPUs: 4}, 0.9, never); room {
		t.Error("a job that fills the cluster to 100% counted as submitted with room")
	}
	tr.submitted("full", Shape{Replicas: 1, GPUs: 4}, t0, false)
	if f := tr.fill(); f != 1 {
		t.Fatalf("fill %v, want 1", f)
	}
	// Full: a reservation waits until stop says so.
	if _, ok := tr.reserve(share, 0.9, func() bool { return true }); ok {
		t.Error("reserve on a full cluster did not wait")
	}
	// One rank of the gang ends: half its GPUs come back.
	tr.ended("g")
	if f := tr.fill(); f != 0.75 {
		t.Errorf("fill after one rank of 2 ended %v, want 0.75", f)
	}
	tr.ended("g")
	tr.ended("g") // a stray report gives back nothing more
	if f := tr.fill(); f != 0.5 {
		t.Errorf("fill after the gang ended %v, want 0.5", f)
	}
	room, ok = tr.reserve(share, 0.9, never)
	if !ok || !room {
		t.Fatal("a share did not fit a half-empty cluster")
	}
	tr.submitted("s", share, t0, room) // never runs

	if w := tr.waiting(); w != 1 {
		t.Errorf("waiting %d, want 1 (the share)", w)
	}
	ms, notRunning := tr.latencies(t0.Add(5 * time.Second))
	if len(ms) != 2 || notRunning != 1 || Percentile(ms, 0.5) != 700 || Percentile(ms, 1) != 5000 {
		t.Errorf("latencies %v, not running %d; want 700 (the gang, at its last rank), 5000 (the share, still waiting at the end) and 1", ms, notRunning)
	}
	if ms, notRunning := tr.latenciesBefore(t0.Add(time.Second), t0.Add(5*time.Second)); len(ms) != 2 || notRunning != 1 {
		t.Errorf("latencies before a cut after every submission: %v, %d not running; want both jobs, one not running", ms, notRunning)
	}
	if ms, _ := tr.latenciesBefore(t0, t0.Add(5*time.Second)); len(ms) != 0 {
		t.Errorf("latencies before a cut at the submissions: %v, want none", ms)
	}
	if seen := tr.seenLatencies(); len(seen) != 1 || seen[0] != 600 {
		t.Errorf("seen latencies %v, want [600] (the gang's last rank; the share never reached an agent)", seen)
	}
}

func TestCountChanged(t *testing.T) {
	before := map[string]string{"a": "down/x/5", "b": "ready/heartbeat resumed/9"}
	after := map[string]string{"a": "down/x/5", "b": "down/y/20", "c": "ready/heartbeat resumed/21"}
	if got := countChanged(before, after); got != 2 {
		t.Errorf("countChanged = %d, want 2 (b again, c new)", got)
	}
	if got := countChanged(nil, nil); got != 0 {
		t.Errorf("countChanged(nil, nil) = %d", got)
	}
}

func TestErrKind(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&client.APIError{StatusCode: 503, Body: api.Error{Error: "no leader elected: forward to leader s1 at 127.0.0.1:4680: Put \"http://127.0.0.1:4680/v1/nodes/ab12/heartbeat\": context deadline exceeded"}},
			`HTTP 503: no leader elected: forward to leader sN at ADDR: Put "…": context deadline exceeded`},
		{&client.APIError{StatusCode: 500, Body: api.Error{Error: "timed out enqueuing operation"}}, "HTTP 500: timed out enqueuing operation"},
		{&client.APIError{StatusCode: 503, Body: api.Error{Error: "this server is still replaying its log (applied 12 of 4096); retry shortly"}},
			"HTTP 503: this server is still replaying its log (applied N of N); retry shortly"},
		{fmt.Errorf("put: %w", context.DeadlineExceeded), "timeout"},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), "connection refused or reset"},
		{errors.New("decode answer: 42 bytes"), "other: decode answer: N bytes"},
	} {
		if got := errKind(c.err); got != c.want {
			t.Errorf("errKind(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
