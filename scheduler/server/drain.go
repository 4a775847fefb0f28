package server

import (
	"fmt"
	"net/http"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/state"
)

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
