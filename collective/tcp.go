package collective

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// TCPTransport connects ranks with one TCP connection per peer and channel,
// so several channels are several parallel streams. TCP_NODELAY is set (small
// messages leave at once) and every chunk is written with one large write.
type TCPTransport struct {
	// Bind is the local IP to listen on; empty means all interfaces. Set it to
	// the address of an RDMA NIC's netdev to keep traffic on that fabric.
	Bind string
	// SockBuf sets SO_SNDBUF and SO_RCVBUF when > 0 (default 4 MiB).
	SockBuf int
}

// Name implements Transport.
func (t *TCPTransport) Name() string { return "tcp" }

const tcpHelloMagic = 0x41524b54 // "ARKT"

// Listen implements Transport.
func (t *TCPTransport) Listen(ctx context.Context, self Self) (Endpoint, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(t.Bind, "0"))
	if err != nil {
		return nil, fmt.Errorf("tcp listen: %w", err)
	}
	ip := t.Bind
	if ip == "" || ip == "0.0.0.0" || ip == "::" {
		ip = self.IP
	}
	if ip == "" {
		ip = "127.0.0.1"
	}
	port := ln.Addr().(*net.TCPAddr).Port
	sb := t.SockBuf
	if sb == 0 {
		sb = 4 << 20
	}
	e := &tcpEndpoint{
		self:    self,
		ln:      ln,
		addr:    net.JoinHostPort(ip, strconv.Itoa(port)),
		sockBuf: sb,
		pending: make(map[[2]int]chan *net.TCPConn),
		done:    make(chan struct{}),
	}
	e.wg.Add(1)
	go e.acceptLoop()
	return e, nil
}

type tcpEndpoint struct {
	self    Self
	ln      net.Listener
	addr    string
	sockBuf int

	mu      sync.Mutex
	pending map[[2]int]chan *net.TCPConn // (peer, ch) -> accepted conn
	closed  bool
	done    chan struct{}
	wg      sync.WaitGroup
}

func (e *tcpEndpoint) Addr() string { return e.addr }

func (e *tcpEndpoint) slot(peer, ch int) chan *net.TCPConn {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := [2]int{peer, ch}
	c, ok := e.pending[k]
	if !ok {
		c = make(chan *net.TCPConn, 1)
		e.pending[k] = c
	}
	return c
}

// hello is what the dialing side sends first: magic, session hash, rank, channel.
func (e *tcpEndpoint) hello(rank, ch int) []byte {
	var b [24]byte
	binary.LittleEndian.PutUint32(b[0:], tcpHelloMagic)
	binary.LittleEndian.PutUint32(b[4:], uint32(rank))
	binary.LittleEndian.PutUint32(b[8:], uint32(ch))
	binary.LittleEndian.PutUint32(b[12:], 0)
	binary.LittleEndian.PutUint64(b[16:], sessionHash(e.self.Session))
	return b[:]
}

// parseHello reads a dialer's hello; ok is false for bytes that are not a
// hello of this session, and for a rank that would not dial self (the lower
// rank dials), whose connection no Connect would ever claim.
func parseHello(b [24]byte, self Self) (peer, ch int, ok bool) {
	if binary.LittleEndian.Uint32(b[0:]) != tcpHelloMagic || binary.LittleEndian.Uint32(b[12:]) != 0 ||
		binary.LittleEndian.Uint64(b[16:]) != sessionHash(self.Session) {
		return 0, 0, false
	}
	peer, ch = int(binary.LittleEndian.Uint32(b[4:])), int(binary.LittleEndian.Uint32(b[8:]))
	return peer, ch, peer < self.Rank
}

func (e *tcpEndpoint) acceptLoop() {
	defer e.wg.Done()
	for {
		c, err := e.ln.Accept()
		if err != nil {
			return // listener closed
		}
		e.wg.Add(1)
		go e.handshake(c.(*net.TCPConn))
	}
}

// handshake reads a dialer's hello and hands the conn to the matching Connect.
func (e *tcpEndpoint) handshake(c *net.TCPConn) {
	defer e.wg.Done()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var b [24]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		return
	}
	peer, ch, ok := parseHello(b, e.self)
	if !ok {
		c.Close()
		return
	}
	if _, err := c.Write([]byte{1}); err != nil {
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	select {
	case e.slot(peer, ch) <- c:
	default:
		c.Close() // duplicate
	}
}

func (e *tcpEndpoint) tune(c *net.TCPConn) {
	_ = c.SetNoDelay(true)
	_ = c.SetReadBuffer(e.sockBuf)
	_ = c.SetWriteBuffer(e.sockBuf)
}

// Connect implements Endpoint: the lower rank dials, the higher accepts.
func (e *tcpEndpoint) Connect(ctx context.Context, peer int, peerAddr string, ch int) (Conn, error) {
	if peer == e.self.Rank {
		return nil, fmt.Errorf("tcp connect to self (rank %d): %w", peer, ErrInvalid)
	}
	if e.self.Rank > peer {
		select {
		case c := <-e.slot(peer, ch):
			e.tune(c)
			return &tcpConn{c: c}, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("tcp accept from rank %d ch %d: %w", peer, ch, ctx.Err())
		case <-e.done:
			return nil, ErrClosed
		}
	}
	var d net.Dialer
	for {
		c, err := e.dial(ctx, &d, peerAddr, ch)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("tcp dial rank %d at %s ch %d: %w", peer, peerAddr, ch, err)
		case <-e.done:
			return nil, ErrClosed
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (e *tcpEndpoint) dial(ctx context.Context, d *net.Dialer, addr string, ch int) (Conn, error) {
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := nc.(*net.TCPConn)
	e.tune(c)
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	var ack [1]byte
	if _, err := c.Write(e.hello(e.self.Rank, ch)); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("hello not acknowledged: %w", err)
	}
	_ = c.SetDeadline(time.Time{})
	return &tcpConn{c: c}, nil
}

func (e *tcpEndpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.done)
	e.mu.Unlock()
	err := e.ln.Close()
	e.wg.Wait()
	e.mu.Lock()
	for _, c := range e.pending { // accepted but never claimed
		select {
		case nc := <-c:
			nc.Close()
		default:
		}
	}
	e.mu.Unlock()
	return err
}

type tcpConn struct{ c *net.TCPConn }

func (t *tcpConn) Send(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	_, err := t.c.Write(p)
	return err
}

func (t *tcpConn) Recv(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	_, err := io.ReadFull(t.c, p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return err
}

func (t *tcpConn) SetDeadline(d time.Time) error { return t.c.SetDeadline(d) }

func (t *tcpConn) Close() error {
	err := t.c.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// sessionHash is FNV-1a of the session id.
func sessionHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
