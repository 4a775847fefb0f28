package server

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"time"

	"github.com/ark-sched/ark/internal/pki"
	"github.com/ark-sched/ark/scheduler/api"
)

// certRoutes are the routes only agents call (and servers, forwarding an
// agent's request to the leader). Under TLS they need a client certificate
// of the cluster CA: an agent's (agent.ark) or a server's (server.ark).
// The rest of the API takes CLI users with only a token, so the handshake
// verifies a client certificate if one is given without requiring it.
var certRoutes = func() *http.ServeMux {
	m := http.NewServeMux()
	for _, p := range []string{
		"POST /v1/nodes/register",
		"PUT /v1/nodes/{id}/heartbeat",
		"GET /v1/nodes/{id}/allocations",
		"GET /v1/allocations/{id}",
		"PUT /v1/allocations/{id}/status",
	} {
		m.HandleFunc(p, func(http.ResponseWriter, *http.Request) {})
	}
	return m
}()

// tlsSetup is what a server needs of its TLS identity: the HTTP API's and
// Raft's configs and the client other servers are called with.
type tlsSetup struct {
	http, raft *tls.Config
	peer       *http.Client
	scheme     string
	// agent calls agents' log endpoints (no timeout: a followed log
	// streams as long as the task runs); under TLS it verifies agent.ark
	// and presents the server's certificate, which agents require.
	agent *http.Client
}

// newTLSSetup builds the configs from id; a nil id is plain HTTP and TCP.
func newTLSSetup(id *pki.Identity) (*tlsSetup, error) {
	if id == nil {
		return &tlsSetup{peer: &http.Client{Timeout: 2 * time.Minute, Transport: peerTransport(nil)}, scheme: "http", agent: &http.Client{}}, nil
	}
	httpCfg, err := id.HTTPServer()
	if err != nil {
		return nil, err
	}
	raftCfg, err := id.Raft()
	if err != nil {
		return nil, err
	}
	t := peerTransport(id.HTTPClient())
	at := http.DefaultTransport.(*http.Transport).Clone()
	at.TLSClientConfig = id.AgentClient()
	return &tlsSetup{
		http: httpCfg, raft: raftCfg, scheme: "https",
		peer:  &http.Client{Timeout: 2 * time.Minute, Transport: t},
		agent: &http.Client{Transport: at},
	}, nil
}

// peerTransport is the transport servers call each other with (c nil:
// plain HTTP). Followers forward every write to the leader, agents'
// heartbeats and reports among them, many at once; Go's default keeps 2
// idle connections per host, so most forwarded requests dialled the
// leader anew.
func peerTransport(c *tls.Config) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = c
	t.MaxIdleConns = 2 * peerIdleConns
	t.MaxIdleConnsPerHost = peerIdleConns
	return t
}

// peerIdleConns is how many idle connections a server keeps to each other
// server: about the writes it forwards at once at 10,000 nodes.
const peerIdleConns = 256

// requireCerts refuses, under TLS, an agent route called without an agent
// or server certificate, and a forwarded request whose sender is not a
// server. Without TLS it passes everything through.
func (s *Server) requireCerts(next http.Handler) http.Handler {
	if s.tls.http == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		server := pki.PeerHasRole(r.TLS, pki.RoleServer)
		if r.Header.Get(forwardedHeader) != "" && !server {
			writeJSON(w, http.StatusForbidden, api.Error{Error: fmt.Sprintf("a forwarded request needs a server certificate (%s) of the cluster CA", pki.ServerName)})
			return
		}
		if _, pattern := certRoutes.Handler(r); pattern != "" && !server && !pki.PeerHasRole(r.TLS, pki.RoleAgent) {
			writeJSON(w, http.StatusForbidden, api.Error{Error: fmt.Sprintf("%s %s is for agents: it needs an agent certificate (%s) of the cluster CA (ark tls cert create --agent)", r.Method, r.URL.Path, pki.AgentName)})
			return
		}
		next.ServeHTTP(w, r)
	})
}
