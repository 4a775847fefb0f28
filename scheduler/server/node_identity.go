package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/state"
)

// Node identity. The token file's agent token is a registration token
// only: it lets a node that is not registered yet register (and nothing
// else but read the node and queue lists). Registration gives the node a
// secret of its own (32 random bytes, hex) that its agent keeps (0600) and
// presents from then on, as Nomad's node SecretID:
//
//   - heartbeats and allocation lists of node X, and reads and status
//     reports of allocations placed on X, need X's secret (or management);
//     another node's secret or the agent token gets 403;
//   - X's agent re-registers after a restart with its secret and keeps its
//     ID, its secret and whatever an operator set (drain, eligibility);
//   - a name that is registered (live or down) is taken over only with
//     that node's secret or by management: an impostor holding the agent
//     token cannot attract the node's jobs or its log requests. Management
//     re-registering a node replaces its secret (an agent whose data dir
//     was lost: run it once with the management token).
//
// The servers keep only the secret's SHA-256 (api.Node.SecretDigest, in
// the node record so that UpsertNode replicates it with the node and it
// goes away with the node; a separate table would need a command of its
// own for the same lifetime). No API answer serves it: publicNode blanks it.
//
// The servers call an agent (logs) with a key of that node's own,
// HMAC-SHA256(management token, node ID), handed to the agent at
// registration: every server derives it, no server stores it, and a node
// (or an impostor) learns only its own, never a token the API accepts.
// Without a token file everything stays open, but registration still
// hands out a secret and agents use it, so that turning access control on
// changes nothing on the agents' side.

// roleNode is a node's agent, known by its node secret.
const roleNode role = 100

// nodeAccess is for routes a node's agent uses about itself (heartbeat,
// its allocations): management or a node secret, checked per node by the
// handler (canNode).
const nodeAccess access = 100

// nodeSecretDigest is what the servers keep of a node secret.
func nodeSecretDigest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// newNodeSecret returns a fresh node secret.
func newNodeSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("node secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// identify returns the principal of a request: a token of the token file,
// or a node secret.
func (s *Server) identify(r *http.Request) (principal, error) {
	p, err := s.acl.identify(r)
	if err == nil || !errors.Is(err, ErrUnauthenticated) || bearer(r) == "" {
		return p, err
	}
	n := s.store.Snapshot().NodeBySecretDigest(nodeSecretDigest(bearer(r)))
	if n == nil {
		return principal{}, err
	}
	return principal{role: roleNode, node: n.ID}, nil
}

// canNode reports whether the principal may act for node id.
func (p principal) canNode(id string) bool {
	return p.role == roleManagement || (p.role == roleNode && p.node == id)
}

// forbiddenNode is the answer to a node secret (or agent token) acting for
// another node.
func forbiddenNode(what string) error {
	return &httpError{http.StatusForbidden, fmt.Errorf("%w: %s belongs to another node; an agent acts only for its own node, with its node secret", ErrForbidden, what)}
}

// nodeLogsKey is what the servers present to node id's agent.
func (s *Server) nodeLogsKey(id string) string {
	if s.acl == nil {
		return ""
	}
	m := hmac.New(sha256.New, []byte(s.acl.serverToken))
	m.Write([]byte("ark-node-logs\x00" + id))
	return hex.EncodeToString(m.Sum(nil))
}

// publicNode is a node as the API serves it: without its secret's digest.
func publicNode(n *api.Node) *api.Node {
	if n == nil || n.SecretDigest == "" {
		return n
	}
	c := *n
	c.SecretDigest = ""
	return &c
}

// publicNodes is publicNode of each.
func publicNodes(nodes []*api.Node) []*api.Node {
	out := make([]*api.Node, len(nodes))
	for i, n := range nodes {
		out[i] = publicNode(n)
	}
	return out
}

// registration decides who registers n and with which secret: it fills in
// n.ID and n.SecretDigest and returns the secret to hand out ("" when the
// node keeps the one it presented). snap is the state the decision reads;
// the FSM still refuses a name held by another live node.
func (s *Server) registration(r *http.Request, snap *state.Snapshot, n *api.Node) (string, error) {
	p := principalOf(r.Context())
	byName := snap.NodeByName(nil, n.Name)
	var byID *api.Node
	if n.ID != "" {
		byID = snap.Node(nil, n.ID)
	}
	switch p.role {
	case roleNode:
		self := snap.Node(nil, p.node)
		if self == nil || (n.ID != "" && n.ID != p.node) || n.Name != self.Name {
			return "", forbiddenNode(fmt.Sprintf("node %q (%s)", n.Name, n.ID))
		}
		n.ID, n.SecretDigest = self.ID, self.SecretDigest
		return "", nil
	case roleAgent:
		// New nodes only: a registered ID or name, live or down, is its
		// node's (an impostor must not take it over).
		if byID != nil {
			return "", &httpError{http.StatusForbidden, fmt.Errorf("%w: node ID %s is registered (node %s); its agent re-registers with its node secret, or an operator with the management token", ErrForbidden, byID.ID, byID.Name)}
		}
		if byName != nil {
			return "", &httpError{http.StatusForbidden, fmt.Errorf("%w: node name %q is registered (node %s, %s); its agent re-registers with its node secret, or an operator with the management token", ErrForbidden, n.Name, byName.ID, byName.Status)}
		}
	case roleManagement:
		// Without a token file every caller is management: an agent that
		// presents its node's secret keeps it.
		if cur := byID; cur != nil || byName != nil {
			if cur == nil {
				cur = byName
			}
			if cur.SecretDigest != "" && bearer(r) != "" && nodeSecretDigest(bearer(r)) == cur.SecretDigest && cur.Name == n.Name {
				n.ID, n.SecretDigest = cur.ID, cur.SecretDigest
				return "", nil
			}
		}
		// An operator replacing a node by name takes over its record (and
		// keeps its drain and eligibility) rather than fail on the name.
		if n.ID == "" && byName != nil {
			n.ID = byName.ID
		}
	default:
		return "", &httpError{http.StatusForbidden, fmt.Errorf("%w: register a node", ErrForbidden)}
	}
	secret, err := newNodeSecret()
	if err != nil {
		return "", err
	}
	n.SecretDigest = nodeSecretDigest(secret)
	return secret, nil
}
