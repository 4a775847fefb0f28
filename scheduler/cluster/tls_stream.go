package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// handshakeTimeout bounds a peer's TLS handshake on the Raft port: a
// connection that never completes one holds nothing for longer.
const handshakeTimeout = 10 * time.Second

// tlsStream is a raft.StreamLayer over mutual TLS. Both ends present a
// certificate signed by the cluster CA and naming server.ark (the config
// from pki.Identity.Raft enforces that); a peer that cannot is dropped
// during the handshake, before Raft reads a byte of its message.
type tlsStream struct {
	ln        net.Listener
	advertise net.Addr
	cfg       *tls.Config
	log       *zap.Logger
	sniff     *httpSniffer
}

// newTLSStream listens on bind. advertise, when non-nil, is the address
// peers dial instead of the bound one.
func newTLSStream(bind string, advertise net.Addr, cfg *tls.Config, log *zap.Logger, sniff *httpSniffer) (*tlsStream, error) {
	if cfg == nil || len(cfg.Certificates) == 0 || cfg.ClientAuth != tls.RequireAndVerifyClientCert {
		return nil, errors.New("raft tls: a config with a certificate that requires and verifies peer certificates is needed")
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	s := &tlsStream{ln: ln, advertise: advertise, cfg: cfg, log: log, sniff: sniff}
	if advertise == nil {
		advertise = ln.Addr()
	}
	if err := advertisable(advertise); err != nil {
		ln.Close()
		return nil, err
	}
	return s, nil
}

// Accept returns the next connection. Its handshake runs on the first
// read or write, in the goroutine Raft gives the connection, so a slow or
// hostile peer never blocks the accept loop.
func (s *tlsStream) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	raw := c
	if s.sniff != nil {
		raw = s.sniff.wrap(c) // plain HTTP is answered before the handshake
	}
	return &serverConn{Conn: tls.Server(raw, s.cfg), raw: raw, log: s.log}, nil
}

func (s *tlsStream) Close() error { return s.ln.Close() }

func (s *tlsStream) Addr() net.Addr {
	if s.advertise != nil {
		return s.advertise
	}
	return s.ln.Addr()
}

// Dial connects to a peer and completes the handshake (verifying that the
// peer is a server of this cluster) within timeout.
func (s *tlsStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: s.cfg}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, fmt.Errorf("raft tls dial %s: %w", address, err)
	}
	return c, nil
}

// serverConn is an accepted connection whose handshake must succeed before
// any byte is read from or written to it.
type serverConn struct {
	*tls.Conn
	raw  net.Conn // under the TLS layer
	log  *zap.Logger
	once sync.Once
	err  error
}

func (c *serverConn) handshake() error {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
		defer cancel()
		if err := c.Conn.HandshakeContext(ctx); err != nil {
			c.err = fmt.Errorf("raft tls handshake from %s refused: %w", c.RemoteAddr(), err)
			if answeredHTTP(c.raw) {
				// Answered and logged as a stray HTTP request; a bare EOF
				// keeps Raft's transport from logging it again.
				c.err = io.EOF
				return
			}
			c.log.Warn("refused a raft connection", zap.Stringer("remote", c.RemoteAddr()), zap.Error(err))
			_ = c.Conn.Close()
		}
	})
	return c.err
}

func (c *serverConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *serverConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// ErrInsecureRaft is returned when Raft would listen in the clear on an
// address other hosts can reach.
var ErrInsecureRaft = errors.New("refusing to serve raft without TLS on a non-loopback address")

// checkRaftBind refuses a plain-TCP Raft listener on anything but
// loopback: whoever reaches an unauthenticated Raft port can send one
// AppendEntries with a higher term and commit any command.
func checkRaftBind(addr *net.TCPAddr, withTLS, insecure bool) error {
	if withTLS || insecure || (addr.IP != nil && addr.IP.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("raft address %s: %w: anyone who reaches it could take over the cluster and commit any command. "+
		"Give the servers --tls-ca, --tls-cert and --tls-key (ark tls ca create; ark tls cert create --server) "+
		"for mutual TLS between servers, bind --raft to 127.0.0.1, or, on a network only the servers can reach, pass --insecure-raft",
		addr, ErrInsecureRaft)
}
