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
type heartbeats struct {
	ttl    time.Duration
	expire func(ctx context.Context, nodeID string, silent time.Duration)
	log    *zap.Logger

	mu     sync.Mutex
	ctx    context.Context // nil while this server is not the leader
	timers map[string]*time.Timer
	wg     sync.WaitGroup
}

func newHeartbeats(ttl time.Duration, expire func(context.Context, string, time.Duration), log *zap.Logger) *heartbeats {
	return &heartbeats{ttl: ttl, expire: expire, log: log, timers: map[string]*time.Timer{}}
}

// start arms a timer for every ready node. A new leader gives each node a
// grace period of one extra TTL, so that healthy nodes whose heartbeats
// went to the old leader during the election are not marked down.
func (h *heartbeats) start(ctx context.Context, nodes []*api.Node) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ctx = ctx
	for _, n := range nodes {
		if n.Status == api.NodeReady {
			h.armLocked(n.ID, 2*h.ttl)
		}
	}
}

// beat resets a node's timer; it returns false when this server does not
// track heartbeats (it is not the leader).
func (h *heartbeats) beat(nodeID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctx == nil {
		return false
	}
	h.armLocked(nodeID, h.ttl)
	return true
}

func (h *heartbeats) armLocked(nodeID string, after time.Duration) {
	if t, ok := h.timers[nodeID]; ok {
		t.Stop()
	}
	ctx := h.ctx
	h.timers[nodeID] = time.AfterFunc(after, func() {
		h.mu.Lock()
		if h.ctx != ctx || ctx.Err() != nil {
			h.mu.Unlock()
			return
		}
		delete(h.timers, nodeID)
		h.wg.Add(1)
		h.mu.Unlock()
		defer h.wg.Done()
		h.expire(ctx, nodeID, after)
	})
}

// stop disarms every timer and waits for expiries in progress.
func (h *heartbeats) stop() {
	h.mu.Lock()
	for id, t := range h.timers {
		t.Stop()
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
