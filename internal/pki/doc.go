// Package pki owns Ark's TLS identities: it creates the cluster's CA and
// the certificates of servers, agents and CLI users (ark tls ...), and
// builds the *tls.Config each side of each connection uses: the HTTP API
// (server and client side) and the Raft transport (mutual TLS).
//
// Roles are told apart by DNS names in the certificate, as Nomad does with
// server.<region>.nomad: a server certificate carries server.ark, an
// agent's agent.ark, a CLI user's cli.ark. Only a certificate signed by the
// cluster's CA and naming server.ark may speak Raft or forward requests
// between servers.
package pki
