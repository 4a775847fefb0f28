package server

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/state"
)

// The ACL API, under /v1/acl. Everything but a token's own description
// needs a management token (the token file's, or one of the ACL state).
// Bootstrap also needs one while the token file is the only way in: a
// bootstrap open to anyone who reaches the port first (as Nomad's is)
// would hand a stranger the cluster.
func (s *Server) aclRoutes(mux *routeMux) {
	mux.HandleFunc("POST /v1/acl/bootstrap", s.auth(mgmtAccess, s.writeHandler(s.handleACLBootstrap)))
	mux.HandleFunc("GET /v1/acl/policies", s.auth(mgmtAccess, s.readHandler(s.handleACLPolicies)))
	mux.HandleFunc("GET /v1/acl/policy/{name}", s.auth(mgmtAccess, s.readHandler(s.handleACLPolicy)))
	mux.HandleFunc("PUT /v1/acl/policy/{name}", s.auth(mgmtAccess, s.writeHandler(s.handleACLPolicyApply)))
	mux.HandleFunc("DELETE /v1/acl/policy/{name}", s.auth(mgmtAccess, s.writeHandler(s.handleACLPolicyDelete)))
	mux.HandleFunc("GET /v1/acl/tokens", s.auth(mgmtAccess, s.readHandler(s.handleACLTokens)))
	mux.HandleFunc("POST /v1/acl/tokens", s.auth(mgmtAccess, s.writeHandler(s.handleACLTokenCreate)))
	mux.HandleFunc("GET /v1/acl/token/self", s.auth(anyToken, s.readHandler(s.handleACLTokenSelf)))
	mux.HandleFunc("GET /v1/acl/token/{accessor}", s.auth(mgmtAccess, s.readHandler(s.handleACLToken)))
	mux.HandleFunc("DELETE /v1/acl/token/{accessor}", s.auth(mgmtAccess, s.writeHandler(s.handleACLTokenDelete)))
}

// errACLOff answers ACL writes on a server without access control, where
// tokens would not be checked: creating them would suggest otherwise.
var errACLOff = &httpError{http.StatusBadRequest, errors.New("access control is off on this server (dev mode): start the servers with --token-file to use ACL tokens")}

func (s *Server) handleACLBootstrap(w http.ResponseWriter, r *http.Request) {
	if s.acl == nil {
		s.fail(w, r, errACLOff)
		return
	}
	if s.store.Snapshot().ACLBootstrapped() {
		s.fail(w, r, &httpError{http.StatusConflict, errors.New("ACL bootstrap already done: it works once; create tokens with a management token (ark acl token create)")})
		return
	}
	rec, secret, err := tokenRecord(&api.ACLTokenRequest{Name: "bootstrap", Type: api.ACLManagementToken}, time.Now().UTC())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// Two bootstraps racing both pass the check above; the FSM lets one in.
	if _, _, err := s.apply(r.Context(), state.ACLBootstrapType, &state.ACLBootstrapRequest{Token: rec}); err != nil {
		s.fail(w, r, err)
		return
	}
	out := rec.API()
	out.SecretID = secret
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleACLPolicies(w http.ResponseWriter, r *http.Request) {
	s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		out := snap.ACLPolicies(ws)
		if out == nil {
			out = []*api.ACLPolicy{}
		}
		return snap.Index(state.TableACLPolicies), out, nil
	})
}

func (s *Server) handleACLPolicy(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		p := snap.ACLPolicy(ws, name)
		if p == nil {
			return 0, nil, fmt.Errorf("ACL policy %q: %w", name, state.ErrNotFound)
		}
		return snap.Index(state.TableACLPolicies), p, nil
	})
}

// handleACLPolicyApply creates or replaces the policy NAME from a YAML or
// JSON document; the document's own name, when given, must agree.
func (s *Server) handleACLPolicyApply(w http.ResponseWriter, r *http.Request) {
	if s.acl == nil {
		s.fail(w, r, errACLOff)
		return
	}
	name := r.PathValue("name")
	body, err := readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := DecodePolicy(body)
	if err != nil {
		s.fail(w, r, asBadRequest(err))
		return
	}
	if p.Name != name {
		s.fail(w, r, &httpError{http.StatusBadRequest, fmt.Errorf("the policy document is named %q, the request %q", p.Name, name)})
		return
	}
	if _, _, err := s.apply(r.Context(), state.ACLUpsertPolicyType, &state.ACLUpsertPolicyRequest{Policy: p}); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.store.Snapshot().ACLPolicy(nil, name))
}

// asBadRequest makes a decoding error that is not already a field list a 400.
func asBadRequest(err error) error {
	if statusOf(err) == http.StatusInternalServerError {
		return &httpError{http.StatusBadRequest, err}
	}
	return err
}

func (s *Server) handleACLPolicyDelete(w http.ResponseWriter, r *http.Request) {
	_, idx, err := s.apply(r.Context(), state.ACLDeletePolicyType, &state.ACLDeletePolicyRequest{Name: r.PathValue("name")})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]uint64{"index": idx})
}

func (s *Server) handleACLTokens(w http.ResponseWriter, r *http.Request) {
	s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		out := []*api.ACLToken{}
		for _, t := range snap.ACLTokens(ws) {
			out = append(out, t.API())
		}
		return snap.Index(state.TableACLTokens), out, nil
	})
}

func (s *Server) handleACLToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("accessor")
	s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		t := snap.ACLToken(ws, id)
		if t == nil {
			return 0, nil, fmt.Errorf("ACL token %q: %w", id, state.ErrNotFound)
		}
		return snap.Index(state.TableACLTokens), t.API(), nil
	})
}

// handleACLTokenSelf describes the token the request carries, when it is
// one of the ACL state.
func (s *Server) handleACLTokenSelf(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r.Context())
	if p.grant == nil {
		s.fail(w, r, fmt.Errorf("this token is not an ACL token (the token file's, a node's, or access control is off): %w", state.ErrNotFound))
		return
	}
	t := s.store.Snapshot().ACLToken(nil, p.grant.accessor)
	if t == nil {
		s.fail(w, r, fmt.Errorf("ACL token %q: %w", p.grant.accessor, state.ErrNotFound))
		return
	}
	writeJSON(w, http.StatusOK, t.API())
}

// handleACLTokenCreate makes a token; its secret is in this answer only.
func (s *Server) handleACLTokenCreate(w http.ResponseWriter, r *http.Request) {
	if s.acl == nil {
		s.fail(w, r, errACLOff)
		return
	}
	var req api.ACLTokenRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	rec, secret, err := tokenRecord(&req, time.Now().UTC())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	snap := s.store.Snapshot()
	for _, name := range rec.Policies {
		if snap.ACLPolicy(nil, name) == nil {
			s.fail(w, r, &httpError{http.StatusBadRequest, fmt.Errorf("policies: no ACL policy %q (ark acl policy apply %s FILE)", name, name)})
			return
		}
	}
	_, idx, err := s.apply(r.Context(), state.ACLUpsertTokenType, &state.ACLUpsertTokenRequest{Token: rec})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := rec.API()
	out.SecretID, out.CreateIndex = secret, idx
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) handleACLTokenDelete(w http.ResponseWriter, r *http.Request) {
	_, idx, err := s.apply(r.Context(), state.ACLDeleteTokenType, &state.ACLDeleteTokenRequest{AccessorID: r.PathValue("accessor")})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]uint64{"index": idx})
}
