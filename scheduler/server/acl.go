package server

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ark-sched/ark/internal/secretfile"
	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/state"
)

// Access control. A token file lists one token per line with its role:
//
//	<token> management            everything, including operator commands
//	<token> agent                 registers new nodes (each then uses its node secret: node_identity.go)
//	<token> namespace:<name>      submit, read, cancel and read logs of jobs in one namespace
//
// Blank lines and lines starting with # are ignored. Requests carry the
// token as "Authorization: Bearer <token>". Without a token file the API
// is open (dev mode), and the server says so in its log.

type role int

const (
	roleNamespace role = iota + 1
	roleAgent
	roleManagement
)

// principal is who a request acts as.
type principal struct {
	role      role
	namespace string    // for roleNamespace
	node      string    // for roleNode: the node's ID
	grant     *aclGrant // for tokens of the ACL state (acl_tokens.go)
}

// ACL maps token digests to principals; nil means access control is off.
type ACL struct {
	tokens map[[32]byte]principal
	// serverToken is the management token servers use with each other.
	serverToken string
}

// Access errors.
var (
	ErrUnauthenticated = errors.New("missing or unknown token")
	ErrForbidden       = errors.New("token does not allow this")
)

// LoadTokens reads a token file.
func LoadTokens(path string) (*ACL, error) {
	// The file holds every role's secret (attack 7 of the tenant review).
	if err := secretfile.Check(path); err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	acl := &ACL{tokens: map[[32]byte]principal{}}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 2 {
			return nil, fmt.Errorf("token file %s line %d: want TOKEN ROLE", path, line)
		}
		tok, r := fields[0], fields[1]
		if len(tok) < 16 {
			return nil, fmt.Errorf("token file %s line %d: tokens must be at least 16 characters", path, line)
		}
		var p principal
		switch {
		case r == "management":
			p.role = roleManagement
			if acl.serverToken == "" {
				acl.serverToken = tok
			}
		case r == "agent":
			p.role = roleAgent
		case strings.HasPrefix(r, "namespace:"):
			p.role, p.namespace = roleNamespace, strings.TrimPrefix(r, "namespace:")
			if p.namespace == "" {
				return nil, fmt.Errorf("token file %s line %d: namespace role needs a name", path, line)
			}
		default:
			return nil, fmt.Errorf("token file %s line %d: unknown role %q (management, agent or namespace:NAME)", path, line, r)
		}
		// A token listed again with another role would silently take the
		// later one (even the servers' own management token).
		if _, dup := acl.tokens[sha256.Sum256([]byte(tok))]; dup {
			return nil, fmt.Errorf("token file %s line %d: token is listed twice", path, line)
		}
		acl.tokens[sha256.Sum256([]byte(tok))] = p
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	if acl.serverToken == "" {
		return nil, fmt.Errorf("token file %s has no management token (servers use one to talk to each other)", path)
	}
	return acl, nil
}

// namespaceTokens counts the file's namespace tokens (the legacy kind,
// bound to a namespace and nothing else).
func (a *ACL) namespaceTokens() int {
	n := 0
	for _, p := range a.tokens {
		if p.role == roleNamespace {
			n++
		}
	}
	return n
}

// identify returns the principal of a request.
func (a *ACL) identify(r *http.Request) (principal, error) {
	if a == nil {
		return principal{role: roleManagement}, nil
	}
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return principal{}, fmt.Errorf("%w: send Authorization: Bearer <token> (ark --token or ARK_TOKEN)", ErrUnauthenticated)
	}
	p, ok := a.tokens[sha256.Sum256([]byte(tok))]
	if !ok {
		return principal{}, ErrUnauthenticated
	}
	return p, nil
}

// access levels of routes.
type access int

const (
	anyToken    access = iota // any valid token
	jobsAccess                // management or a namespace token (checked per job)
	agentAccess               // node registration: management, agent, or a node (node_identity.go)
	mgmtAccess                // management only
)

func (p principal) allows(need access) bool {
	switch need {
	case anyToken:
		return true
	case jobsAccess:
		return p.role == roleManagement || p.role == roleNamespace
	case agentAccess:
		return p.role == roleManagement || p.role == roleAgent || p.role == roleNode
	case nodeAccess:
		return p.role == roleManagement || p.role == roleNode
	}
	return p.role == roleManagement
}

// canNamespace reports whether the principal may act on jobs of ns.
func (p principal) canNamespace(ns string) bool {
	if p.grant != nil && p.role == roleNamespace {
		return p.grant.has(ns, api.CapRead)
	}
	return p.role == roleManagement || (p.role == roleNamespace && p.namespace == ns)
}

type principalKey struct{}

func principalOf(ctx context.Context) principal {
	p, ok := ctx.Value(principalKey{}).(principal)
	if !ok {
		return principal{role: roleManagement} // in-process callers
	}
	return p
}

// auth wraps a handler with an access check.
func (s *Server) auth(need access, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.identifyRequest(r)
		s.audited(w, r, p, err, func(w http.ResponseWriter) { s.gate(w, r, need, p, err, h) })
	}
}

// gate answers a request its caller may not make (401, 403, 429), or
// passes it to h with the caller's principal in its context.
func (s *Server) gate(w http.ResponseWriter, r *http.Request, need access, p principal, err error, h http.HandlerFunc) {
	if err != nil {
		// Answer before reading the body, and close at once:
		// net/http drains up to 256 KiB of an unread body before
		// closing, and a stranger trickling it would hold the
		// connection for as long as the body timeout.
		w.Header().Set("Connection", "close")
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
		writeError(w, http.StatusUnauthorized, err)
		return
	}
	if !p.allows(need) {
		writeError(w, http.StatusForbidden, fmt.Errorf("%w: %s %s", ErrForbidden, r.Method, r.URL.Path))
		return
	}
	if p.role == roleNamespace && (s.svcRate == nil || !isServiceCall(r)) { // with --service-rate, services have their own bucket
		if ok, retry := s.rate.allow(bearer(r)); !ok {
			tooManyRequests(w, retry)
			return
		}
	}
	h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
}

// hiddenJob is the answer for a job in a namespace the token cannot see:
// not found, so that other namespaces' job IDs are not revealed.
func hiddenJob(id string) error {
	return fmt.Errorf("job %q: %w", id, state.ErrNotFound)
}

// setServerAuth adds the servers' own token to a request between servers.
func (s *Server) setServerAuth(req *http.Request) {
	if s.acl != nil {
		req.Header.Set("Authorization", "Bearer "+s.acl.serverToken)
	}
}

// TokenFingerprint names a token without revealing it (the audit log's
// accessor).
func TokenFingerprint(tok string) string {
	sum := sha256.Sum256([]byte("ark-token-fingerprint\x00" + tok))
	return hex.EncodeToString(sum[:8])
}

// bearer is the token a request carries, or "".
func bearer(r *http.Request) string {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return tok
}
