package server

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/state"
)

// drainTick is how often the leader's drainer looks at draining nodes.
const drainTick = 500 * time.Millisecond

// runDrainer moves work off draining nodes, on the leader, until ctx ends:
// jobs still running on a node when its drain deadline passes are
// restarted elsewhere (whole gangs), and a drain with nothing left on its
// node is recorded complete. The node stays ineligible afterwards. The same
// tick stops jobs past their maxRuntime and, every gcEvery, forgets jobs
// finished more than JobGCThreshold ago.
func (s *Server) runDrainer(ctx context.Context) {
	t := time.NewTicker(drainTick)
	defer t.Stop()
	var lastGC time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now().UTC()
		s.drainPass(ctx, now)
		s.runtimePass(ctx, now)
		if now.Sub(lastGC) >= min(gcEvery, max(s.cfg.JobGCThreshold, drainTick)) {
			s.gcPass(ctx, now)
			lastGC = now
		}
	}
}

func (s *Server) drainPass(ctx context.Context, now time.Time) {
	snap := s.store.Snapshot()
	for _, n := range snap.Nodes(nil) {
		if n.Drain == nil {
			continue
		}
		jobs := map[string]bool{}
		live := 0
		for _, a := range snap.AllocsByNode(nil, n.ID) {
			if a.Terminal() {
				continue
			}
			live++
			if j := snap.Job(nil, a.JobID); j != nil && j.Status == api.JobRunning && a.DesiredStatus == api.DesiredRun {
				jobs[a.JobID] = true
			}
		}
		var err error
		switch {
		case live == 0:
			_, _, err = s.apply(ctx, state.NodeDrainType, &state.NodeDrainRequest{NodeID: n.ID, Complete: true})
			if err == nil {
				s.log.Info("node drained", zap.String("node", n.Name))
			}
		case len(jobs) > 0 && !now.Before(n.Drain.Deadline):
			ids := make([]string, 0, len(jobs))
			for id := range jobs {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			_, _, err = s.apply(ctx, state.MigrateJobsType, &state.MigrateJobsRequest{
				JobIDs: ids, Reason: fmt.Sprintf("moving off draining node %s", n.Name), Time: now,
			})
			if err == nil {
				s.log.Info("moving jobs off a draining node", zap.String("node", n.Name), zap.Strings("jobs", ids))
			}
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("drain step failed", zap.String("node", n.Name), zap.Error(err))
		}
	}
}

// nodeRequest decodes a node operator request's body into req and finds
// the node the path names; it answers the error itself and returns nil.
func (s *Server) nodeRequest(w http.ResponseWriter, r *http.Request, req any) *api.Node {
	if err := decodeJSON(w, r, req); err != nil {
		s.fail(w, r, err)
		return nil
	}
	n := nodeByRef(nil, s.store.Snapshot(), r.PathValue("id"))
	if n == nil {
		s.fail(w, r, fmt.Errorf("node %q: %w", r.PathValue("id"), state.ErrNotFound))
	}
	return n
}

// handleDrain starts or cancels a node's drain.
func (s *Server) handleDrain(w http.ResponseWriter, r *http.Request) {
	var req api.DrainRequest
	n := s.nodeRequest(w, r, &req)
	if n == nil {
		return
	}
	cmd := &state.NodeDrainRequest{NodeID: n.ID}
	if req.Enable {
		d := time.Duration(0)
		if req.Deadline != "" {
			var err error
			if d, err = time.ParseDuration(req.Deadline); err != nil || d < 0 {
				s.fail(w, r, &httpError{http.StatusBadRequest, fmt.Errorf("deadline: want a duration such as 1h or 0s, got %q", req.Deadline)})
				return
			}
		}
		now := time.Now().UTC()
		cmd.Drain = &api.DrainStrategy{StartedAt: now, Deadline: now.Add(d)}
	}
	if _, _, err := s.apply(r.Context(), state.NodeDrainType, cmd); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, publicNode(s.store.Snapshot().Node(nil, n.ID)))
}

// handleEligibility opens or closes a node to new allocations.
func (s *Server) handleEligibility(w http.ResponseWriter, r *http.Request) {
	var req api.EligibilityRequest
	n := s.nodeRequest(w, r, &req)
	if n == nil {
		return
	}
	if _, _, err := s.apply(r.Context(), state.NodeEligibilityType, &state.NodeEligibilityRequest{NodeID: n.ID, Eligible: req.Eligible}); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, publicNode(s.store.Snapshot().Node(nil, n.ID)))
}
