package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/ark-sched/ark/internal/secretfile"
)

// Files names the PEM files of one process's TLS identity: the cluster CA
// it trusts, and its own certificate and key.
type Files struct {
	CA, Cert, Key string
}

// Enabled reports whether any TLS file is named.
func (f Files) Enabled() bool { return f.CA != "" || f.Cert != "" || f.Key != "" }

// Check validates the combination: a CA always, and a certificate and key
// together. needCert is set for servers and agents, which must present one.
func (f Files) Check(needCert bool) error {
	switch {
	case !f.Enabled():
		return nil
	case f.CA == "":
		return errors.New("--tls-ca: required with --tls-cert and --tls-key (the CA that signed the servers' certificates)")
	case (f.Cert == "") != (f.Key == ""):
		return errors.New("--tls-cert and --tls-key: give both or neither")
	case needCert && f.Cert == "":
		return errors.New("--tls-cert and --tls-key: required with --tls-ca (create them with ark tls cert create)")
	}
	return nil
}

// Identity is a loaded TLS identity: the CA pool and, unless it is a CLI
// user without a certificate, its own certificate.
type Identity struct {
	pool *x509.CertPool
	cert *tls.Certificate
}

// Load reads the files. A private key that others may read is refused: it
// is the process's identity in the cluster.
func Load(f Files) (*Identity, error) {
	if err := f.Check(false); err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("--tls-ca: %s holds no PEM certificate", f.CA)
	}
	id := &Identity{pool: pool}
	if f.Cert == "" {
		return id, nil
	}
	if err := secretfile.Check(f.Key); err != nil {
		return nil, fmt.Errorf("--tls-key: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("--tls-cert: %w", err)
		}
	}
	// A certificate from another CA would only fail later, at every
	// handshake, with a less helpful error.
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("--tls-cert: %s is not signed by the CA in %s: %w", f.Cert, f.CA, err)
	}
	id.cert = &cert
	return id, nil
}

// HasRole reports whether the certificate is valid for role.
func (id *Identity) HasRole(role Role) bool {
	return id.cert != nil && id.cert.Leaf.VerifyHostname(role.dnsName()) == nil
}

// cipherSuites are the TLS 1.2 suites offered: forward-secret AEADs only.
// TLS 1.3 (preferred; Go negotiates it whenever both sides have it) has
// its own fixed set.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// errNotServer is the answer to a server started with another role's
// certificate.
var errNotServer = fmt.Errorf("--tls-cert: not a server certificate (want DNS name %s; create one with ark tls cert create --server)", ServerName)

// HTTPServer is the config of a server's HTTP API. A client certificate is
// verified if given, not required at the handshake: CLI users authenticate
// with tokens, and a browser or curl without a certificate must still get
// a readable 401 or 403 rather than a handshake failure. The routes that
// agents and servers use require one (see PeerHasRole), as Nomad does with
// verify_https_client for its RPC-only paths.
func (id *Identity) HTTPServer() (*tls.Config, error) {
	if !id.HasRole(RoleServer) {
		return nil, errNotServer
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: cipherSuites,
		Certificates: []tls.Certificate{*id.cert},
		ClientCAs:    id.pool,
		ClientAuth:   tls.VerifyClientCertIfGiven,
	}, nil
}

// HTTPClient is the config of a client of the API (CLI, agent, a server
// forwarding to the leader). It verifies that the peer is a server of this
// cluster by the name server.ark, whatever address it was reached at, and
// presents this identity's certificate when it has one.
func (id *Identity) HTTPClient() *tls.Config {
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: cipherSuites,
		RootCAs:      id.pool,
		ServerName:   ServerName,
	}
	if id.cert != nil {
		c.Certificates = []tls.Certificate{*id.cert}
	}
	return c
}

// AgentServer is the config of an agent's own listener, which serves task
// logs to the servers: only a server of this cluster (server.ark) gets
// past the handshake, so logs never go to anyone else.
func (id *Identity) AgentServer() (*tls.Config, error) {
	// ark dev's in-process agents serve with the server's certificate.
	if !id.HasRole(RoleAgent) && !id.HasRole(RoleServer) {
		return nil, fmt.Errorf("--tls-cert: not an agent certificate (want DNS name %s; create one with ark tls cert create --agent)", AgentName)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: cipherSuites,
		Certificates: []tls.Certificate{*id.cert},
		ClientCAs:    id.pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return requireRole(cs, RoleServer)
		},
	}, nil
}

// AgentClient is the config a server calls an agent with: it verifies the
// agent's chain against the CA and its name, agent.ark (or server.ark: ark
// dev's agents serve with the server's certificate), whatever address was
// dialled, and presents the server's certificate.
func (id *Identity) AgentClient() *tls.Config {
	c := id.HTTPClient()
	// crypto/tls checks one ServerName; two names are checked here, in
	// VerifyConnection, with the same chain verification it would do.
	c.InsecureSkipVerify = true
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("agent presented no certificate")
		}
		inter := x509.NewCertPool()
		for _, ic := range cs.PeerCertificates[1:] {
			inter.AddCert(ic)
		}
		leaf := cs.PeerCertificates[0]
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: id.pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return fmt.Errorf("agent certificate: %w", err)
		}
		if leaf.VerifyHostname(AgentName) != nil && leaf.VerifyHostname(ServerName) != nil {
			return fmt.Errorf("peer certificate %q is not an agent certificate (%s)", leaf.Subject.CommonName, AgentName)
		}
		return nil
	}
	return c
}

// Raft is the config of the Raft transport, both ends: TLS 1.3 only (every
// peer is an Ark server of the same version range), a certificate required
// from both sides, signed by the CA and naming server.ark. An agent's or a
// CLI user's certificate, though signed by the same CA, is refused.
func (id *Identity) Raft() (*tls.Config, error) {
	if !id.HasRole(RoleServer) {
		return nil, errNotServer
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{*id.cert},
		RootCAs:      id.pool,
		ClientCAs:    id.pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ServerName:   ServerName,
		// The chain is verified by then; the name check is what tells a
		// server from an agent on the accepting side, where crypto/tls
		// checks no name.
		VerifyConnection: func(cs tls.ConnectionState) error {
			return requireRole(cs, RoleServer)
		},
	}, nil
}

// PeerHasRole reports whether a connection's peer presented a certificate,
// verified against the CA during the handshake, that is valid for role.
func PeerHasRole(cs *tls.ConnectionState, role Role) bool {
	return cs != nil && requireRole(*cs, role) == nil
}

func requireRole(cs tls.ConnectionState, role Role) error {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return fmt.Errorf("peer presented no certificate signed by the cluster CA")
	}
	leaf := cs.VerifiedChains[0][0]
	if err := leaf.VerifyHostname(role.dnsName()); err != nil {
		return fmt.Errorf("peer certificate %q is not a %s certificate (%s): %w", leaf.Subject.CommonName, role, role.dnsName(), err)
	}
	return nil
}
