package cluster

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// Advertised addresses. A server's Raft address is its identity in the
// Raft configuration: peers dial it, and a server that comes back at
// another one must be re-addressed by the leader. On Kubernetes a
// StatefulSet pod keeps its DNS name (ark-server-0.ark-server.ark.svc...)
// but not its IP, so a server there advertises the name (--raft-advertise)
// while it binds its pod IP (--raft). hashicorp/raft's own TCP transport
// would need the advertised address resolved to an IP at start; Ark's
// stream layers (plain and TLS) take a name as it is, and each dial looks
// it up again, so a peer's new IP is found without touching the
// configuration.

// hostAddr is an advertised host:port whose host may be a DNS name.
type hostAddr string

func (a hostAddr) Network() string { return "tcp" }
func (a hostAddr) String() string  { return string(a) }

// ParseAdvertise checks an address to advertise: host:port with a port
// of 1 to 65535 and a host that is a DNS name or a specific IP (not
// 0.0.0.0 or ::, which no peer can dial).
func ParseAdvertise(addr string) (net.Addr, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("advertise address %q: %w", addr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return nil, fmt.Errorf("advertise address %q: port must be 1 to 65535", addr)
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsUnspecified() {
			return nil, fmt.Errorf("advertise address %q: %s is not an address a peer can dial", addr, host)
		}
		return &net.TCPAddr{IP: ip, Port: mustAtoi(port)}, nil
	}
	if !validHostname(host) {
		return nil, fmt.Errorf("advertise address %q: %q is not a DNS name", addr, host)
	}
	return hostAddr(addr), nil
}

func mustAtoi(s string) int { n, _ := strconv.Atoi(s); return n }

// validHostname reports whether h is a DNS name: dot-separated labels of
// letters, digits and '-', 1 to 63 characters each, 253 in all.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c == '.':
			if label == 0 || h[i-1] == '-' {
				return false
			}
			label = 0
			continue
		case c == '-':
			if label == 0 {
				return false
			}
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		default:
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return label > 0 && h[len(h)-1] != '-'
}

// advertisable reports whether a (what a stream layer advertises) is an
// address peers can dial.
func advertisable(a net.Addr) error {
	switch a := a.(type) {
	case hostAddr:
		return nil
	case *net.TCPAddr:
		if a.IP != nil && !a.IP.IsUnspecified() {
			return nil
		}
	}
	return fmt.Errorf("raft address %s is not advertisable: bind a specific address, or advertise one (--raft-advertise)", a)
}

// warnUnresolved logs when an advertised name does not resolve (yet):
// peers cannot reach this server until it does. Starting anyway is right
// on Kubernetes, where a pod's name appears in DNS shortly after the pod
// has its IP.
func warnUnresolved(a net.Addr, log *zap.Logger) {
	h, ok := a.(hostAddr)
	if !ok {
		return
	}
	host, _, _ := net.SplitHostPort(string(h))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := net.DefaultResolver.LookupHost(ctx, host); err != nil {
		log.Warn("the advertised Raft name does not resolve yet; peers cannot reach this server until it does",
			zap.String("advertise", string(h)), zap.Error(err))
	}
}
