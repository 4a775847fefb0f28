package rdma

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/ark-sched/ark/collective"
)

// Transport is a collective.Transport over RDMA verbs: one reliable-connected
// queue pair per (peer, channel), data moved with RDMA WRITE_WITH_IMM into a
// registered ring of the receiver's and flow-controlled by credits (see
// flow.go and DESIGN.md). Connection setup runs over a small TCP side
// channel, which stays open to tell each side when the other closes.
//
// Listen fails with an error wrapping ErrNoLibrary when libibverbs.so.1
// cannot be loaded and ErrNoDevice when no device has an active port.
type Transport struct {
	// Device is the RDMA device ("mlx5_0"); empty takes the first device
	// whose Port is active.
	Device string
	// Port is the device port, 1 by default.
	Port int
	// GIDIndex forces the source GID index on RoCE; nil picks the RoCE v2
	// entry mapped from this rank's IPv4 address (or the device netdev's).
	GIDIndex *int
	// Slots and SlotBytes size each direction's receive ring (8 x 512 KiB
	// by default); a connection registers twice that (ring + send staging).
	// Both ranks must use the same values.
	Slots     int
	SlotBytes int
	// TrafficClass is the RoCE traffic class (DSCP << 2) of the packets.
	TrafficClass int
	// AckTimeout is the RC ack timeout exponent: 4.096 us << AckTimeout
	// (default 14, about 67 ms), retried 7 times.
	AckTimeout int
	// ProbeTimeout bounds the connect-time probe over the new queue pair
	// (default 5 s; see Connect).
	ProbeTimeout time.Duration

	opener opener // nil: libibverbs; tests set an in-memory fake
}

// Defaults of Transport.
const (
	DefaultSlots        = 8
	DefaultSlotBytes    = 512 << 10
	DefaultAckTimeout   = 14
	DefaultProbeTimeout = 5 * time.Second
)

// Name implements collective.Transport.
func (t *Transport) Name() string { return "rdma" }

// device is an opened RDMA port, shared by an endpoint and its conns.
type device interface {
	name() string
	port() portInfo
	newQP(memBytes, sendDepth, recvDepth int) (queuePair, error)
	close() error
}

type opener interface {
	open(t *Transport, self collective.Self) (device, error)
}

// devRef counts an endpoint's and its conns' holds on a device; the last
// release closes it (conns outlive their endpoint).
type devRef struct {
	device
	mu   sync.Mutex
	refs int
}

func (r *devRef) acquire() {
	r.mu.Lock()
	r.refs++
	r.mu.Unlock()
}

func (r *devRef) release() {
	r.mu.Lock()
	r.refs--
	last := r.refs == 0
	r.mu.Unlock()
	if last {
		_ = r.device.close()
	}
}

func (t *Transport) withDefaults() (Transport, error) {
	c := *t
	if c.Port == 0 {
		c.Port = 1
	}
	if c.Slots == 0 {
		c.Slots = DefaultSlots
	}
	if c.SlotBytes == 0 {
		c.SlotBytes = DefaultSlotBytes
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = DefaultProbeTimeout
	}
	switch {
	case c.Port < 1 || c.Port > 255:
		return c, fmt.Errorf("rdma port %d: %w", c.Port, collective.ErrInvalid)
	case c.Slots < 1 || c.Slots > maxSlots:
		return c, fmt.Errorf("rdma slots %d (1..%d): %w", c.Slots, maxSlots, collective.ErrInvalid)
	case c.SlotBytes < minSlotBytes || c.SlotBytes > maxSlotBytes || c.SlotBytes%8 != 0:
		return c, fmt.Errorf("rdma slot bytes %d (%d..%d, multiple of 8): %w", c.SlotBytes, minSlotBytes, maxSlotBytes, collective.ErrInvalid)
	case c.AckTimeout < 1 || c.AckTimeout > 31:
		return c, fmt.Errorf("rdma ack timeout exponent %d: %w", c.AckTimeout, collective.ErrInvalid)
	case c.TrafficClass < 0 || c.TrafficClass > 255:
		return c, fmt.Errorf("rdma traffic class %d: %w", c.TrafficClass, collective.ErrInvalid)
	case c.ProbeTimeout < 0:
		return c, fmt.Errorf("rdma probe timeout %v: %w", c.ProbeTimeout, collective.ErrInvalid)
	}
	if c.opener == nil {
		c.opener = verbsOpener{}
	}
	return c, nil
}

// Listen implements collective.Transport: it opens the device and a TCP
// listener for connection setup.
func (t *Transport) Listen(ctx context.Context, self collective.Self) (collective.Endpoint, error) {
	cfg, err := t.withDefaults()
	if err != nil {
		return nil, err
	}
	d, err := cfg.opener.open(&cfg, self)
	if err != nil {
		return nil, err
	}
	dev := &devRef{device: d, refs: 1}
	ip := self.IP
	if ip == "" {
		ip = "127.0.0.1"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort("", "0"))
	if err != nil {
		dev.release()
		return nil, fmt.Errorf("rdma side channel listen: %w", err)
	}
	e := &endpoint{
		cfg: cfg, self: self, dev: dev, ln: ln,
		addr:    formatAddr(net.JoinHostPort(ip, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)), d.name()),
		pending: make(map[[2]int]chan accepted),
		done:    make(chan struct{}),
	}
	e.wg.Add(1)
	go e.acceptLoop()
	return e, nil
}

type accepted struct {
	c    net.Conn
	info *wireInfo
}

type endpoint struct {
	cfg  Transport
	self collective.Self
	dev  *devRef
	ln   net.Listener
	addr string

	mu      sync.Mutex
	pending map[[2]int]chan accepted // (peer, ch) -> handshake received
	closed  bool
	done    chan struct{}
	wg      sync.WaitGroup
}

func (e *endpoint) Addr() string { return e.addr }

func (e *endpoint) slot(peer, ch int) chan accepted {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := [2]int{peer, ch}
	c, ok := e.pending[k]
	if !ok {
		c = make(chan accepted, 1)
		e.pending[k] = c
	}
	return c
}

func (e *endpoint) acceptLoop() {
	defer e.wg.Done()
	for {
		c, err := e.ln.Accept()
		if err != nil {
			return // listener closed
		}
		e.wg.Add(1)
		go e.handshake(c)
	}
}

// handshake reads a dialer's wireInfo and hands it to the matching Connect.
func (e *endpoint) handshake(c net.Conn) {
	defer e.wg.Done()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, wireSize)
	if _, err := io.ReadFull(c, b); err != nil {
		c.Close()
		return
	}
	w, err := decodeWire(b)
	if err != nil || w.Session != sessionHash(e.self.Session) {
		c.Close()
		return
	}
	select {
	case e.slot(int(w.Rank), int(w.Ch)) <- accepted{c, w}:
	default:
		c.Close() // duplicate
	}
}

// Connect implements collective.Endpoint. Both ranks create their queue
// pair and post their receives; the lower rank dials the higher one's side
// channel and sends its wireInfo, the higher answers with its own. From
// then on both sides take the same steps whatever fails, so they reach the
// same verdict:
//
//  1. each checks the other's handshake and moves its queue pair to RTR
//     and RTS, then sends one ready byte (1: in RTS, 0: not) and reads the
//     peer's, so neither writes into a queue pair that is not ready;
//  2. if both are ready, the probe (probe.go) sends a known pattern from
//     the lower rank to the higher and back over the new queue pairs,
//     within ProbeTimeout;
//  3. each sends its status (ok, or failed with a reason) over the side
//     channel and reads the peer's.
//
// The conn is returned only if both statuses are ok; otherwise both sides
// destroy their queue pairs and return an error wrapping
// collective.ErrTransportUnavailable and the reason, so a Communicator
// under auto connects the pair over tcp on both sides. Failures before the
// side channel is up (or of the side channel itself) are plain errors.
func (e *endpoint) Connect(ctx context.Context, peer int, peerAddr string, ch int) (collective.Conn, error) {
	if peer == e.self.Rank || peer < 0 || ch < 0 {
		return nil, fmt.Errorf("rdma connect rank %d ch %d from rank %d: %w", peer, ch, e.self.Rank, collective.ErrInvalid)
	}
	hostport, _, err := parseAddr(peerAddr)
	if err != nil {
		return nil, fmt.Errorf("rdma connect rank %d: %w", peer, err)
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, collective.ErrClosed
	}
	e.dev.acquire() // held by the conn, or released below on failure
	e.mu.Unlock()
	lay := layout{slots: e.cfg.Slots, slotBytes: e.cfg.SlotBytes}
	pi := e.dev.port()
	pi.PSN = rand.Uint32() & 0xffffff
	// A queue pair that cannot be created (registration beyond
	// RLIMIT_MEMLOCK, say) is this side's fault to report, not a reason to
	// leave the peer waiting: the handshake then says so (flagNoQP).
	q, fault := e.newQP(lay)
	var side net.Conn
	ok := false
	defer func() {
		if !ok {
			if side != nil {
				side.Close()
			}
			if q != nil {
				_ = q.destroy()
			}
			e.dev.release()
		}
	}()
	mine := &wireInfo{
		MTU: pi.MTU, LinkLayer: pi.LinkLayer, Rank: uint32(e.self.Rank), Ch: uint32(ch),
		Session: sessionHash(e.self.Session), LID: pi.LID,
		Slots: uint32(lay.slots), SlotBytes: uint32(lay.slotBytes), GID: pi.GID,
	}
	if q != nil {
		mine.QPN, mine.PSN, mine.RKey = q.num(), pi.PSN, q.key()
		mine.RingAddr, mine.CreditAddr = q.base()+uint64(lay.ringOff()), q.base()+uint64(lay.ctlOff())
	} else {
		mine.Flags |= flagNoQP
	}
	var theirs *wireInfo
	if e.self.Rank < peer {
		side, theirs, err = e.dial(ctx, hostport, mine)
	} else {
		side, theirs, err = e.accept(ctx, peer, ch, mine)
	}
	if err != nil {
		return nil, fmt.Errorf("rdma connect rank %d ch %d at %s: %w", peer, ch, peerAddr, err)
	}
	if fault == nil {
		fault = checkPeer(mine, theirs, peer, ch)
	}
	if fault == nil {
		fault = q.connect(pi, theirs, e.cfg.TrafficClass, e.cfg.AckTimeout)
	}
	peerReady, err := ready(ctx, side, fault == nil)
	if err != nil {
		return nil, fmt.Errorf("rdma connect rank %d ch %d at %s: %w", peer, ch, peerAddr, err)
	}
	var c *conn
	if fault == nil && peerReady {
		c = newConn(q, side, e.dev, peer, lay, theirs)
	}
	fault, theirFault, err := e.settle(ctx, c, side, peer, ch, fault)
	if err != nil {
		return nil, fmt.Errorf("rdma connect rank %d ch %d at %s: %w", peer, ch, peerAddr, err)
	}
	if fault != nil || theirFault != nil {
		return nil, fmt.Errorf("rdma connect rank %d ch %d at %s: %w: %w", peer, ch, peerAddr,
			collective.ErrTransportUnavailable, reason(peer, fault, theirFault))
	}
	ok = true
	c.start()
	return c, nil
}

// newQP creates a connection's queue pair and posts its receives.
func (e *endpoint) newQP(lay layout) (queuePair, error) {
	q, err := e.dev.newQP(lay.size(), 2*lay.slots+1, lay.slots)
	if err != nil {
		return nil, err
	}
	for i := range lay.slots {
		if err := q.postRecv(uint64(i)); err != nil {
			_ = q.destroy()
			return nil, err
		}
	}
	return q, nil
}

// checkPeer checks the peer's handshake against ours.
func checkPeer(mine, theirs *wireInfo, peer, ch int) error {
	switch {
	case int(theirs.Rank) != peer || int(theirs.Ch) != ch:
		return fmt.Errorf("answer from rank %d ch %d: %w", theirs.Rank, theirs.Ch, errHandshake)
	case theirs.Flags&flagNoQP != 0:
		return errors.New("the peer has no queue pair")
	case theirs.Slots != mine.Slots || theirs.SlotBytes != mine.SlotBytes:
		return fmt.Errorf("ring of %d x %d bytes here, %d x %d there (Transport.Slots/SlotBytes differ): %w",
			mine.Slots, mine.SlotBytes, theirs.Slots, theirs.SlotBytes, errHandshake)
	case theirs.LinkLayer != mine.LinkLayer:
		return fmt.Errorf("link layer %d here, %d there: %w", mine.LinkLayer, theirs.LinkLayer, errHandshake)
	}
	return nil
}

// dial connects to the peer's side channel (retrying while it is not yet
// listening), sends mine and reads the answer.
func (e *endpoint) dial(ctx context.Context, hostport string, mine *wireInfo) (net.Conn, *wireInfo, error) {
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", hostport)
		if err == nil {
			w, err := exchange(ctx, c, mine, true)
			if err != nil {
				c.Close()
				return nil, nil, err
			}
			return c, w, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("dial: %w", err)
		case <-e.done:
			return nil, nil, collective.ErrClosed
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// accept waits for the peer's handshake and answers it.
func (e *endpoint) accept(ctx context.Context, peer, ch int, mine *wireInfo) (net.Conn, *wireInfo, error) {
	select {
	case a := <-e.slot(peer, ch):
		if _, err := exchange(ctx, a.c, mine, false); err != nil {
			a.c.Close()
			return nil, nil, err
		}
		return a.c, a.info, nil
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("waiting for the handshake: %w", ctx.Err())
	case <-e.done:
		return nil, nil, collective.ErrClosed
	}
}

// exchange sends mine and, when read is set, reads and checks the answer.
func exchange(ctx context.Context, c net.Conn, mine *wireInfo, read bool) (*wireInfo, error) {
	setupDeadline(ctx, c)
	if _, err := c.Write(mine.encode()); err != nil {
		return nil, fmt.Errorf("send handshake: %w", err)
	}
	if !read {
		return nil, nil
	}
	b := make([]byte, wireSize)
	if _, err := io.ReadFull(c, b); err != nil {
		return nil, fmt.Errorf("read handshake: %w", err)
	}
	w, err := decodeWire(b)
	if err != nil {
		return nil, err
	}
	if w.Session != mine.Session {
		return nil, fmt.Errorf("answer from another session: %w", errHandshake)
	}
	return w, nil
}

// ready tells the peer whether our queue pair is in RTS and reads the
// same of the peer's.
func ready(ctx context.Context, c net.Conn, rts bool) (bool, error) {
	setupDeadline(ctx, c)
	b := [1]byte{0}
	if rts {
		b[0] = 1
	}
	if _, err := c.Write(b[:]); err != nil {
		return false, fmt.Errorf("send ready: %w", err)
	}
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return false, fmt.Errorf("wait for ready: %w", err)
	}
	if b[0] > 1 {
		return false, fmt.Errorf("ready byte %d: %w", b[0], errHandshake)
	}
	return b[0] == 1, nil
}

func setupDeadline(ctx context.Context, c net.Conn) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(30 * time.Second)
	}
	_ = c.SetDeadline(dl)
}

// Close implements collective.Endpoint; conns stay open and keep the
// device until the last one closes.
func (e *endpoint) Close() error {
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
	for _, c := range e.pending {
		select {
		case a := <-c:
			a.c.Close()
		default:
		}
	}
	e.mu.Unlock()
	e.dev.release()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// sessionHash is FNV-1a of the session id, as the TCP transport's hello.
func sessionHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
