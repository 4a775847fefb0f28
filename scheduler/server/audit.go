package server

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/internal/audit"
)

// openAudit opens the server's audit log. A log that does not verify (cut
// or edited, or torn by a crash) is moved aside, kept as evidence, and a
// new chain starts: the API must not stay down because of it.
func openAudit(path string, log *zap.Logger) (*audit.Log, error) {
	l, err := audit.Open(path)
	if err == nil {
		return l, nil
	}
	if _, statErr := os.Stat(path); statErr != nil {
		return nil, err
	}
	aside := fmt.Sprintf("%s.broken-%s", path, time.Now().UTC().Format("20060102T150405Z"))
	if rerr := os.Rename(path, aside); rerr != nil {
		return nil, fmt.Errorf("%w; and moving it aside: %v", err, rerr)
	}
	log.Warn("the audit log did not verify; it was moved aside and a new one started", zap.String("moved_to", aside), zap.Error(err))
	return audit.Open(path)
}

// audited says whether a request goes to the audit log: every write and
// every operator or ACL call, read or not. Heartbeats are left out: they
// change nothing but a node's liveness and would drown the rest.
func audited(r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, "/v1/operator/") || strings.HasPrefix(r.URL.Path, "/v1/acl/") {
		return true
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return false
	}
	return !strings.HasSuffix(r.URL.Path, "/heartbeat")
}

// audited serves a request through serve, recording it before it runs and
// its outcome after when it is audited, with who made it (p, as auth
// identified it: an ACL token's accessor ID, or a file token's
// fingerprint; never the secret), the route and its target. Refused
// requests are recorded too.
func (s *Server) audited(w http.ResponseWriter, r *http.Request, p principal, idErr error, serve func(http.ResponseWriter)) {
	if s.audit == nil || !audited(r) {
		serve(w)
		return
	}
	e := audit.Entry{
		Phase: audit.PhaseRequest, Request: randomSuffix(8),
		Method: r.Method, Route: r.Pattern, Target: r.PathValue("id"), Remote: r.RemoteAddr,
	}
	if idErr == nil {
		e.Role, e.Namespace = p.role.String(), p.namespace
		if p.role == roleNode {
			e.Role = "node:" + p.node
		}
		if p.grant != nil {
			// An ACL token has a public accessor ID: name it by that.
			e.Accessor = p.grant.accessor
		}
	}
	if idErr != nil || p.grant == nil {
		// A file token is named by its fingerprint (a hash, computed
		// only when no accessor ID names the token).
		if tok := bearer(r); tok != "" {
			e.Accessor = TokenFingerprint(tok)
		}
	}
	s.appendAudit(e)
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	serve(rec)
	e.Phase, e.Code, e.Outcome = audit.PhaseResponse, rec.code, audit.Outcome(rec.code)
	s.appendAudit(e)
}

func (s *Server) appendAudit(e audit.Entry) {
	if err := s.audit.Append(e); err != nil {
		s.log.Error("audit log write failed", zap.Error(err))
	}
}

func (r role) String() string {
	switch r {
	case roleNamespace:
		return "namespace"
	case roleAgent:
		return "agent"
	case roleManagement:
		return "management"
	case roleNode:
		return "node"
	}
	return "unknown"
}

// statusRecorder keeps the status code a handler answered with, for the
// audit log and the API metrics. It passes Flush through (log streams).
type statusRecorder struct {
	http.ResponseWriter
	code    int
	written bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.written {
		r.code, r.written = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.written = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (deadlines,
// flushes of streamed answers).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
