package server

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestHeartbeatTTLScales: the TTL nodes are told keeps the leader's
// heartbeats under the rate (3 x nodes / TTL), never below the flag's TTL.
func TestHeartbeatTTLScales(t *testing.T) {
	cases := []struct {
		rate  float64
		nodes int
		want  time.Duration
	}{
		{500, 1, 10 * time.Second},
		{500, 1000, 10 * time.Second},
		{500, 1666, 10 * time.Second},
		{500, 1700, 11 * time.Second},
		{500, 10000, 60 * time.Second},
		{50, 10000, 600 * time.Second},
		{-1, 10000, 10 * time.Second}, // scaling off
	}
	for _, c := range cases {
		h := newHeartbeats(10*time.Second, c.rate, nil, zap.NewNop())
		got := h.scaledTTL(c.nodes)
		if got != c.want {
			t.Errorf("rate %v, %d nodes: TTL %v, want %v", c.rate, c.nodes, got, c.want)
		}
		if c.rate > 0 && float64(3*c.nodes)/got.Seconds() > c.rate {
			t.Errorf("rate %v, %d nodes: TTL %v lets %.0f heartbeats/s in", c.rate, c.nodes, got, float64(3*c.nodes)/got.Seconds())
		}
	}
}

// TestHeartbeatsArmTheTTLTold: a node is marked down only after the TTL
// its last answer told it (or a longer one it was told before, which it
// may still be pacing by), and a new leader gives every ready node two
// scaled TTLs.
func TestHeartbeatsArmTheTTLTold(t *testing.T) {
	var mu sync.Mutex
	expired := map[string]time.Duration{}
	h := newHeartbeats(40*time.Millisecond, 50, func(_ context.Context, id string, silent time.Duration) {
		mu.Lock()
		expired[id] = silent
		mu.Unlock()
	}, zap.NewNop())
	var nodes []*api.Node
	for i := range 4 {
		nodes = append(nodes, &api.Node{ID: fmt.Sprintf("n%d", i), Status: api.NodeReady})
	}
	nodes = append(nodes, &api.Node{ID: "down", Status: api.NodeDown})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, ok := h.beat("n0"); ok {
		t.Fatal("a follower tracked a heartbeat")
	}
	h.start(ctx, nodes)
	defer h.stop()
	// 4 ready nodes at 50/s: 3 x 4 / 50 = 0.24 s, rounded up to 1 s.
	h.mu.Lock()
	n0 := h.timers["n0"]
	_, tracked := h.timers["down"]
	h.mu.Unlock()
	if n0 == nil || n0.ttl != time.Second || tracked {
		t.Fatalf("after start: n0 %+v, down tracked %v; want a 1 s TTL told and no timer for a down node", n0, tracked)
	}
	ttl, ok := h.beat("n1")
	if !ok || ttl != time.Second {
		t.Fatalf("beat: TTL %v, %v; want 1s", ttl, ok)
	}
	// A node told a longer TTL than the one it is told now keeps that
	// long once more.
	h.mu.Lock()
	h.timers["n2"].ttl = 5 * time.Second
	h.mu.Unlock()
	if ttl, _ := h.beat("n2"); ttl != time.Second {
		t.Fatalf("n2 told %v", ttl)
	}
	time.Sleep(2500 * time.Millisecond) // past 2 x 1 s for n0, n3
	mu.Lock()
	defer mu.Unlock()
	if expired["n0"] != 2*time.Second || expired["n3"] != 2*time.Second || expired["n1"] != time.Second {
		t.Errorf("expired %v: want n0 and n3 after 2s (a new leader's grace), n1 after 1s", expired)
	}
	if _, ok := expired["n2"]; ok {
		t.Errorf("n2 expired after %v: it was last told 5s", expired["n2"])
	}
}
