package collective

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// ctrlMsg is the one message type of the rendezvous/control protocol: JSON,
// one object per line, over one TCP connection from every rank (rank 0
// included) to rank 0's coordinator.
type ctrlMsg struct {
	T       string            `json:"t"` // hello session addrs table hb query lagging abort bye err
	Rank    int               `json:"rank,omitempty"`
	World   int               `json:"world,omitempty"`
	Host    string            `json:"host,omitempty"`
	Addrs   map[string]string `json:"addrs,omitempty"`
	Session string            `json:"session,omitempty"`
	Peers   []peerInfo        `json:"peers,omitempty"`
	Seq     uint64            `json:"seq,omitempty"`
	ID      uint64            `json:"id,omitempty"`
	Ranks   []int             `json:"ranks,omitempty"`
	Reason  string            `json:"reason,omitempty"`
	Kind    string            `json:"kind,omitempty"` // abort/failed: lost, stalled, timeout
	Op      string            `json:"op,omitempty"`
}

func errKind(err error) string {
	switch {
	case errors.Is(err, ErrStalled):
		return "stalled"
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrAborted):
		return "aborted"
	}
	return "lost"
}

func kindErr(kind string) error {
	switch kind {
	case "stalled":
		return ErrStalled
	case "timeout":
		return ErrTimeout
	case "aborted":
		return ErrAborted
	}
	return ErrPeerLost
}

type peerInfo struct {
	Host  string            `json:"host"`
	Addrs map[string]string `json:"addrs"`
}

type ctrlConn struct {
	c   net.Conn
	mu  sync.Mutex // serialises writes
	enc *json.Encoder
	dec *json.Decoder
}

func newCtrlConn(c net.Conn) *ctrlConn {
	return &ctrlConn{c: c, enc: json.NewEncoder(c), dec: json.NewDecoder(bufio.NewReader(c))}
}

func (cc *ctrlConn) send(m *ctrlMsg) error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	_ = cc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return cc.enc.Encode(m)
}

// hostID names the machine for the shm-or-tcp choice: hostname and boot id.
func hostID() string {
	h, _ := os.Hostname()
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return h + "/" + strings.TrimSpace(string(b))
}

func newSession() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// coordinator runs on rank 0: it admits world ranks, hands out the session
// and the address table, then watches heartbeats, relays aborts and answers
// stall queries until Close.
type coordinator struct {
	ln          net.Listener
	world       int
	peerTimeout time.Duration
	heartbeat   time.Duration

	mu        sync.Mutex
	clients   []*ctrlConn
	lastHeard []time.Time
	entered   []uint64
	bye       []bool
	gone      []bool
	aborted   bool
	accepted  []net.Conn    // every rendezvous conn, closed on shutdown
	ready     chan struct{} // closed when all ranks said bye or are gone

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errc   chan error // rendezvous outcome
}

func startCoordinator(ln net.Listener, o Options) *coordinator {
	ctx, cancel := context.WithCancel(context.Background())
	co := &coordinator{
		ln: ln, world: o.WorldSize, peerTimeout: o.PeerTimeout, heartbeat: o.Heartbeat,
		clients: make([]*ctrlConn, o.WorldSize), lastHeard: make([]time.Time, o.WorldSize),
		entered: make([]uint64, o.WorldSize), bye: make([]bool, o.WorldSize), gone: make([]bool, o.WorldSize),
		ready: make(chan struct{}), ctx: ctx, cancel: cancel, errc: make(chan error, 1),
	}
	co.wg.Add(1)
	go co.run(o.ConnectTimeout)
	return co
}

func (co *coordinator) run(connectTimeout time.Duration) {
	defer co.wg.Done()
	session := newSession()
	type joined struct {
		rank int
		cc   *ctrlConn
		info peerInfo
		err  error
	}
	joins := make(chan joined)
	var accWG sync.WaitGroup
	accWG.Add(1)
	go func() { // accept loop for the rendezvous phase
		defer accWG.Done()
		for {
			c, err := co.ln.Accept()
			if err != nil {
				return
			}
			co.mu.Lock()
			co.accepted = append(co.accepted, c)
			co.mu.Unlock()
			accWG.Add(1)
			go func() {
				defer accWG.Done()
				cc := newCtrlConn(c)
				_ = c.SetReadDeadline(time.Now().Add(connectTimeout))
				var m ctrlMsg
				j := joined{rank: -1, cc: cc}
				if err := cc.dec.Decode(&m); err != nil {
					j.err = fmt.Errorf("bad hello: %w", err)
				} else if err := checkHello(&m, co.world); err != nil {
					j.err = err
				} else {
					j.rank = m.Rank
					_ = cc.send(&ctrlMsg{T: "session", Session: session})
					var a ctrlMsg
					if err := cc.dec.Decode(&a); err != nil || a.T != "addrs" {
						j.err = fmt.Errorf("rank %d: no addresses: %v", m.Rank, err)
					}
					j.info = peerInfo{Host: m.Host, Addrs: a.Addrs}
				}
				select {
				case joins <- j:
				case <-co.ctx.Done():
					c.Close()
				}
			}()
		}
	}()
	peers := make([]peerInfo, co.world)
	n := 0
	timer := time.NewTimer(connectTimeout)
	defer timer.Stop()
	var rdvErr error
	for n < co.world && rdvErr == nil {
		select {
		case j := <-joins:
			if j.err != nil || co.clients[j.rank] != nil {
				msg := "duplicate rank"
				if j.err != nil {
					msg = j.err.Error()
				}
				_ = j.cc.send(&ctrlMsg{T: "err", Reason: msg})
				j.cc.c.Close()
				continue
			}
			co.clients[j.rank] = j.cc
			peers[j.rank] = j.info
			n++
		case <-timer.C:
			rdvErr = fmt.Errorf("rendezvous: %d of %d ranks joined within %v", n, co.world, connectTimeout)
		case <-co.ctx.Done():
			rdvErr = ErrClosed
		}
	}
	co.ln.Close() // no more joins; a rebuild listens again
	// Drain late joiners until the acceptors exit.
	go func() {
		for j := range joins {
			j.cc.c.Close()
		}
	}()
	defer func() { accWG.Wait(); close(joins) }()
	if rdvErr != nil {
		for _, cc := range co.clients {
			if cc != nil {
				_ = cc.send(&ctrlMsg{T: "err", Reason: rdvErr.Error()})
				cc.c.Close()
			}
		}
		co.errc <- rdvErr
		return
	}
	now := time.Now()
	for r, cc := range co.clients {
		co.lastHeard[r] = now
		_ = cc.c.SetReadDeadline(time.Time{})
		_ = cc.send(&ctrlMsg{T: "table", Session: session, Peers: peers})
	}
	co.errc <- nil
	for r := range co.clients {
		co.wg.Add(1)
		go co.serve(r)
	}
	co.watch()
}

// checkHello checks a rank's first control message against the world the
// coordinator runs.
func checkHello(m *ctrlMsg, world int) error {
	switch {
	case m.T != "hello":
		return fmt.Errorf("bad hello: got a %q message", m.T)
	case m.World != world || m.Rank < 0 || m.Rank >= world:
		return fmt.Errorf("rank %d of world %d does not fit world %d", m.Rank, m.World, world)
	}
	return nil
}

// serve reads one rank's control messages.
func (co *coordinator) serve(r int) {
	defer co.wg.Done()
	cc := co.clients[r]
	for {
		var m ctrlMsg
		if err := cc.dec.Decode(&m); err != nil {
			co.mu.Lock()
			co.gone[r] = true
			bye := co.bye[r]
			co.checkReadyLocked()
			co.mu.Unlock()
			if !bye && co.ctx.Err() == nil {
				co.abort(r, "lost", fmt.Sprintf("control connection lost (process died?): %v", err))
			}
			return
		}
		co.mu.Lock()
		co.lastHeard[r] = time.Now()
		switch m.T {
		case "hb":
			co.entered[r] = max(co.entered[r], m.Seq)
		case "bye":
			co.bye[r] = true
			co.checkReadyLocked()
		case "failed":
			co.mu.Unlock()
			co.abortOp(m.Rank, m.Kind, m.Op, m.Reason)
			continue
		case "query":
			var lag []int
			for i := range co.world {
				if i != r && !co.bye[i] && co.entered[i] < m.Seq {
					lag = append(lag, i)
				}
			}
			co.mu.Unlock()
			_ = cc.send(&ctrlMsg{T: "lagging", ID: m.ID, Ranks: lag})
			continue
		}
		co.mu.Unlock()
	}
}

func (co *coordinator) checkReadyLocked() {
	for i := range co.world {
		if !co.bye[i] && !co.gone[i] {
			return
		}
	}
	select {
	case <-co.ready:
	default:
		close(co.ready)
	}
}

// watch sends heartbeats and aborts everyone when a rank goes silent.
func (co *coordinator) watch() {
	t := time.NewTicker(co.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-co.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		co.mu.Lock()
		silent := -1
		for r := range co.world {
			if !co.bye[r] && !co.gone[r] && now.Sub(co.lastHeard[r]) > co.peerTimeout {
				silent = r
				break
			}
		}
		co.mu.Unlock()
		if silent >= 0 {
			co.abort(silent, "stalled", fmt.Sprintf("no heartbeat for %v", co.peerTimeout))
		}
		co.broadcast(&ctrlMsg{T: "hb"}, -1)
	}
}

func (co *coordinator) abort(r int, kind, reason string) { co.abortOp(r, kind, "", reason) }

func (co *coordinator) abortOp(r int, kind, op, reason string) {
	co.mu.Lock()
	if co.aborted {
		co.mu.Unlock()
		return
	}
	co.aborted = true
	co.mu.Unlock()
	co.broadcast(&ctrlMsg{T: "abort", Rank: r, Kind: kind, Op: op, Reason: reason}, -1)
}

func (co *coordinator) broadcast(m *ctrlMsg, skip int) {
	for r, cc := range co.clients {
		co.mu.Lock()
		skipIt := r == skip || co.gone[r] || co.bye[r]
		co.mu.Unlock()
		if !skipIt {
			_ = cc.send(m)
		}
	}
}

// close waits up to wait for every rank's bye (so ranks still finishing their
// last operation are not aborted by rank 0 leaving), then shuts down.
func (co *coordinator) close(wait time.Duration) {
	select {
	case <-co.ready:
	case <-time.After(wait):
	}
	co.kill()
	co.wg.Wait()
}

// kill closes the coordinator without waiting (tests simulate a crash).
func (co *coordinator) kill() {
	co.cancel()
	co.ln.Close()
	co.mu.Lock()
	for _, c := range co.accepted {
		c.Close()
	}
	co.mu.Unlock()
}

// control is a rank's client of the coordinator.
type control struct {
	cc      *ctrlConn
	rank    int
	session string
	localIP string
	peers   []peerInfo

	onAbort func(*PeerError)
	entered func() uint64

	mu        sync.Mutex
	lastHeard time.Time
	replies   chan ctrlMsg
	queryID   uint64
	closing   bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// dialControl connects to the coordinator (retrying until ctx ends), sends
// hello and returns once the session is known.
func dialControl(ctx context.Context, o Options, masterAddr string) (*control, error) {
	var d net.Dialer
	var c net.Conn
	var err error
	for {
		c, err = d.DialContext(ctx, "tcp", masterAddr)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("rendezvous dial %s: %w", masterAddr, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	cc := newCtrlConn(c)
	host := hostID()
	if o.Host != "" {
		host = o.Host
	}
	if err := cc.send(&ctrlMsg{T: "hello", Rank: o.Rank, World: o.WorldSize, Host: host}); err != nil {
		c.Close()
		return nil, fmt.Errorf("rendezvous hello: %w", err)
	}
	var m ctrlMsg
	if err := cc.dec.Decode(&m); err != nil {
		c.Close()
		return nil, fmt.Errorf("rendezvous session: %w", err)
	}
	if m.T == "err" {
		c.Close()
		return nil, fmt.Errorf("rendezvous refused: %s", m.Reason)
	}
	ip, _, _ := net.SplitHostPort(c.LocalAddr().String())
	return &control{cc: cc, rank: o.Rank, session: m.Session, localIP: ip, replies: make(chan ctrlMsg, 1)}, nil
}

// exchange publishes this rank's addresses and waits for the full table.
func (ct *control) exchange(addrs map[string]string) error {
	if err := ct.cc.send(&ctrlMsg{T: "addrs", Addrs: addrs}); err != nil {
		return fmt.Errorf("rendezvous addrs: %w", err)
	}
	var m ctrlMsg
	if err := ct.cc.dec.Decode(&m); err != nil {
		return fmt.Errorf("rendezvous table: %w", err)
	}
	if m.T != "table" {
		return fmt.Errorf("rendezvous failed: %s", m.Reason)
	}
	ct.peers = m.Peers
	_ = ct.cc.c.SetDeadline(time.Time{})
	return nil
}

// start runs the reader and heartbeat goroutines until close.
func (ct *control) start(hb, peerTimeout time.Duration, entered func() uint64, onAbort func(*PeerError)) {
	ct.entered, ct.onAbort = entered, onAbort
	ct.ctx, ct.cancel = context.WithCancel(context.Background())
	ct.lastHeard = time.Now()
	ct.wg.Add(2)
	go ct.read()
	go ct.beat(hb, peerTimeout)
}

func (ct *control) read() {
	defer ct.wg.Done()
	for {
		var m ctrlMsg
		if err := ct.cc.dec.Decode(&m); err != nil {
			ct.mu.Lock()
			closing := ct.closing
			ct.mu.Unlock()
			if !closing {
				ct.onAbort(peerErr(0, "", ErrPeerLost, fmt.Errorf("rank 0 (coordinator) connection lost: %w", err)))
			}
			return
		}
		ct.mu.Lock()
		ct.lastHeard = time.Now()
		ct.mu.Unlock()
		switch m.T {
		case "abort":
			ct.onAbort(peerErr(m.Rank, m.Op, kindErr(m.Kind), errors.New(m.Reason)))
		case "lagging":
			select {
			case ct.replies <- m:
			default:
			}
		}
	}
}

func (ct *control) beat(hb, peerTimeout time.Duration) {
	defer ct.wg.Done()
	t := time.NewTicker(hb)
	defer t.Stop()
	for {
		select {
		case <-ct.ctx.Done():
			return
		case <-t.C:
		}
		_ = ct.cc.send(&ctrlMsg{T: "hb", Seq: ct.entered()})
		ct.mu.Lock()
		silent := time.Since(ct.lastHeard)
		ct.mu.Unlock()
		if silent > peerTimeout && ct.rank != 0 {
			ct.onAbort(peerErr(0, "", ErrStalled, fmt.Errorf("no heartbeat from rank 0 (coordinator) for %v", silent.Round(time.Millisecond))))
		}
	}
}

// lagging asks the coordinator which ranks have not entered operation seq.
func (ct *control) lagging(seq uint64, wait time.Duration) ([]int, error) {
	ct.mu.Lock()
	ct.queryID++
	id := ct.queryID
	ct.mu.Unlock()
	if err := ct.cc.send(&ctrlMsg{T: "query", ID: id, Seq: seq}); err != nil {
		return nil, err
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case m := <-ct.replies:
			if m.ID == id {
				return m.Ranks, nil
			}
		case <-t.C:
			return nil, fmt.Errorf("coordinator did not answer within %v", wait)
		}
	}
}

// report tells the coordinator this rank's verdict on a failed operation, so
// every rank (the culprit included, if alive) aborts with the same error.
func (ct *control) report(pe *PeerError) {
	reason := strings.TrimPrefix(pe.Err.Error(), kindErr(errKind(pe.Err)).Error()+": ")
	_ = ct.cc.send(&ctrlMsg{T: "failed", Rank: pe.Rank, Kind: errKind(pe.Err), Op: pe.Op, Reason: reason})
}

// close says bye and stops the goroutines.
func (ct *control) close() {
	ct.mu.Lock()
	ct.closing = true
	ct.mu.Unlock()
	_ = ct.cc.send(&ctrlMsg{T: "bye"})
	if ct.cancel != nil {
		ct.cancel()
	}
	// Rank 0's coordinator closes the connection once everyone said bye;
	// others close it now. Either way the reader ends.
	ct.cc.c.Close()
	ct.wg.Wait()
}
