package server

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/scheduler/state"
)

// Tokens of the ACL state (Raft, not the token file). A request's bearer
// token that the token file does not know is looked up by the SHA-256 of
// its secret; an expired token is refused as unknown (401). A client
// token acts as a namespace token whose namespaces, capabilities, queues,
// priorities, limits and storage come from its policies, resolved at each
// request so that a policy change or a deleted policy takes effect at
// once. A management token is the token file's management role.

// aclGrant is what a client token's policies allow, by namespace.
type aclGrant struct {
	accessor string
	ns       map[string]*nsGrant
}

// nsGrant merges every rule of a token's policies for one namespace:
// capabilities, queues and prefixes are the union, maxPriority and
// limits the highest any policy sets (a limit no policy sets is none).
type nsGrant struct {
	policies     []string
	caps         map[string]bool
	queues       []string
	maxPriority  int
	limits       api.ACLLimits
	readPrefixes []string // storageKey form
}

// identifyRequest is identify (the token file, then node secrets) and,
// for a token neither knows, the ACL state's tokens.
func (s *Server) identifyRequest(r *http.Request) (principal, error) {
	p, err := s.identify(r)
	if err == nil || !errors.Is(err, ErrUnauthenticated) || s.acl == nil || bearer(r) == "" {
		return p, err
	}
	sp, ok, serr := s.stateTokenPrincipal(bearer(r), time.Now())
	if !ok {
		return p, err
	}
	return sp, serr
}

// secretHash is what the state keeps of a token secret.
func secretHash(secret string) string {
	sum := sha256.Sum256([]byte("ark-acl-secret\x00" + secret))
	return hex.EncodeToString(sum[:])
}

// stateTokenPrincipal resolves a secret of the ACL state; ok is false when
// no token has it.
func (s *Server) stateTokenPrincipal(secret string, now time.Time) (principal, bool, error) {
	snap := s.store.Snapshot()
	tok := snap.ACLTokenBySecretHash(secretHash(secret))
	if tok == nil {
		return principal{}, false, nil
	}
	if tok.Expired(now) {
		return principal{}, true, fmt.Errorf("%w: token %s expired at %s", ErrUnauthenticated, tok.AccessorID, tok.ExpirationTime.Format(time.RFC3339))
	}
	if tok.Type == api.ACLManagementToken {
		return principal{role: roleManagement, grant: &aclGrant{accessor: tok.AccessorID}}, true, nil
	}
	g := &aclGrant{accessor: tok.AccessorID, ns: map[string]*nsGrant{}}
	for _, name := range tok.Policies {
		pol := snap.ACLPolicy(nil, name)
		if pol == nil {
			continue // deleted: grants nothing
		}
		for _, rule := range pol.Namespaces {
			g.add(pol.Name, rule)
		}
	}
	return principal{role: roleNamespace, grant: g}, true, nil
}

func (g *aclGrant) add(policy string, rule api.ACLNamespaceRule) {
	n := g.ns[rule.Name]
	if n == nil {
		n = &nsGrant{caps: map[string]bool{}}
		g.ns[rule.Name] = n
	}
	n.policies = append(n.policies, policy)
	for _, c := range rule.Capabilities {
		n.caps[c] = true
	}
	queues := rule.Queues
	if len(queues) == 0 {
		queues = []string{spec.DefaultQueue}
	}
	for _, q := range queues {
		if !slices.Contains(n.queues, q) {
			n.queues = append(n.queues, q)
		}
	}
	sort.Strings(n.queues)
	prio := rule.MaxPriority
	if prio == 0 {
		prio = spec.DefaultPriority
	}
	n.maxPriority = max(n.maxPriority, prio)
	n.limits.Jobs = max(n.limits.Jobs, rule.Limits.Jobs)
	n.limits.PendingJobs = max(n.limits.PendingJobs, rule.Limits.PendingJobs)
	n.limits.GPUs = max(n.limits.GPUs, rule.Limits.GPUs)
	for _, pre := range rule.Storage.Read {
		if k, err := storageKey(pre); err == nil { // validated at apply
			n.readPrefixes = append(n.readPrefixes, k)
		}
	}
}

// has reports whether the grant allows capability in namespace ns.
func (g *aclGrant) has(ns, capability string) bool {
	n := g.ns[ns]
	return n != nil && n.caps[capability]
}

// can reports whether the principal may use capability on jobs of ns: a
// token of the ACL state as its policies say, the token file's tokens as
// before (a namespace token may do everything in its namespace).
func (p principal) can(ns, capability string) bool {
	if p.grant != nil && p.role == roleNamespace {
		return p.grant.has(ns, capability)
	}
	return p.canNamespace(ns)
}

// newTokenIDs returns a fresh accessor ID (public, UUID-shaped) and secret.
func newTokenIDs() (accessor, secret string, err error) {
	b := make([]byte, 48)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("token: %w", err)
	}
	a := hex.EncodeToString(b[:16])
	return a[:8] + "-" + a[8:12] + "-" + a[12:16] + "-" + a[16:20] + "-" + a[20:], hex.EncodeToString(b[16:]), nil
}

// tokenRecord builds the state record of a new token from a request.
func tokenRecord(req *api.ACLTokenRequest, now time.Time) (*state.ACLToken, string, error) {
	var es spec.Errors
	add := func(path, format string, args ...any) {
		es = append(es, spec.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	typ := req.Type
	if typ == "" {
		typ = api.ACLClientToken
	}
	switch typ {
	case api.ACLClientToken:
		if len(req.Policies) == 0 {
			add("policies", "a client token needs at least one policy")
		}
	case api.ACLManagementToken:
		if len(req.Policies) > 0 {
			add("policies", "a management token may do everything: it takes no policies")
		}
	default:
		add("type", "must be client or management, got %q", req.Type)
	}
	if len(req.Name) > 256 || strings.ContainsFunc(req.Name, func(r rune) bool { return r < 0x20 }) {
		add("name", "must be at most 256 characters without control characters")
	}
	var exp time.Time
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			add("ttl", "must be a positive duration such as 24h, got %q", req.TTL)
		} else {
			exp = now.Add(d)
		}
	}
	if len(es) > 0 {
		return nil, "", es
	}
	accessor, secret, err := newTokenIDs()
	if err != nil {
		return nil, "", err
	}
	return &state.ACLToken{
		AccessorID: accessor, SecretHash: secretHash(secret), Name: req.Name, Type: typ,
		Policies: slices.Clone(req.Policies), CreateTime: now, ExpirationTime: exp,
	}, secret, nil
}
