package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/state"
)

// heartbeats tracks node TTLs on the leader. Heartbeats are not written to
// Raft; only a node's change of status is.
//
// The TTL grows with the cluster so that the heartbeats the leader takes
// stay under rate a second, as Nomad's max_heartbeats_per_second does: an
// agent beats three times a TTL, so n nodes send 3n/TTL a second and the
// TTL handed out is max(ttl, 3n/rate). At the default 500/s the TTL stays
// at its flag's value up to 1,666 nodes and is 60 s at 10,000: a dead node
// is noticed later, but a live one is never marked down because the leader
// could not keep up with every node's heartbeats (issue 18: at 10,000 nodes
// and a fixed 10 s TTL the leader took 638 of 3,000 a second). Every
// answer (registration and heartbeat) carries the TTL the node's timer was
// armed with, and the agent paces its next heartbeats by it.
type heartbeats struct {
	ttl    time.Duration
	rate   float64 // heartbeats a second the TTL is scaled for; 0: not scaled
	expire func(ctx context.Context, nodeID string, silent time.Duration)
	log    *zap.Logger

	mu     sync.Mutex
	ctx    context.Context // nil while this server is not the leader
	timers map[string]*nodeTimer
	wg     sync.WaitGroup
}

// nodeTimer is a node's armed timer and the TTL it was last told.
type nodeTimer struct {
	t   *time.Timer
	ttl time.Duration
}

func newHeartbeats(ttl time.Duration, rate float64, expire func(context.Context, string, time.Duration), log *zap.Logger) *heartbeats {
	return &heartbeats{ttl: ttl, rate: rate, expire: expire, log: log, timers: map[string]*nodeTimer{}}
}

// scaledTTL is the TTL for a cluster of n nodes.
func (h *heartbeats) scaledTTL(n int) time.Duration {
	if h.rate <= 0 {
		return h.ttl
	}
	// Whole seconds, so the TTL a node is told does not change at every
	// node that joins or leaves.
	s := time.Duration(float64(3*n)/h.rate+0.999) * time.Second
	return max(h.ttl, s)
}

// start arms a timer for every ready node. A new leader gives each node a
// grace period of one extra TTL, so that healthy nodes whose heartbeats
// went to the old leader during the election are not marked down.
func (h *heartbeats) start(ctx context.Context, nodes []*api.Node) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ctx = ctx
	ready := 0
	for _, n := range nodes {
		if n.Status == api.NodeReady {
			ready++
		}
	}
	ttl := h.scaledTTL(ready)
	for _, n := range nodes {
		if n.Status == api.NodeReady {
			h.armLocked(n.ID, 2*ttl, ttl)
		}
	}
}

// beat resets a node's timer and returns the TTL to tell it; ok is false
// when this server does not track heartbeats (it is not the leader).
func (h *heartbeats) beat(nodeID string) (ttl time.Duration, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctx == nil {
		return h.ttl, false
	}
	n := len(h.timers)
	prev, known := h.timers[nodeID]
	if !known {
		n++
	}
	ttl = h.scaledTTL(n)
	after := ttl
	if known && prev.ttl > after {
		// The node was told a longer TTL last time and paces its next
		// heartbeat by it: give it that long once more.
		after = prev.ttl
	}
	h.armLocked(nodeID, after, ttl)
	return ttl, true
}

func (h *heartbeats) armLocked(nodeID string, after, told time.Duration) {
	if t, ok := h.timers[nodeID]; ok {
		t.t.Stop()
	}
	ctx := h.ctx
	nt := &nodeTimer{ttl: told}
	nt.t = time.AfterFunc(after, func() {
		h.mu.Lock()
		// A beat that re-armed the node after this timer fired, but
		// before it took the lock, replaced it: the node is alive.
		if h.ctx != ctx || ctx.Err() != nil || h.timers[nodeID] != nt {
			h.mu.Unlock()
			return
		}
		delete(h.timers, nodeID)
		h.wg.Add(1)
		h.mu.Unlock()
		defer h.wg.Done()
		h.expire(ctx, nodeID, after)
	})
	h.timers[nodeID] = nt
}

// stop disarms every timer and waits for expiries in progress.
func (h *heartbeats) stop() {
	h.mu.Lock()
	for id, t := range h.timers {
		t.t.Stop()
		delete(h.timers, id)
	}
	h.ctx = nil
	h.mu.Unlock()
	h.wg.Wait()
}

// markNodeDown commits a node's move to down; its live allocations are
// marked lost by the FSM.
func (s *Server) markNodeDown(ctx context.Context, nodeID string, silent time.Duration) {
	info := fmt.Sprintf("no heartbeat for %s", silent.Round(time.Millisecond))
	_, _, err := s.apply(ctx, state.NodeStatusType, &state.NodeStatusRequest{
		NodeID: nodeID, Status: api.NodeDown, Info: info, Time: time.Now().UTC(), StopCause: api.AllocStopped,
	})
	if err != nil {
		s.log.Warn("marking node down failed", zap.String("node", nodeID), zap.Error(err))
		return
	}
	s.log.Warn("node marked down", zap.String("node", nodeID), zap.String("why", info))
}
