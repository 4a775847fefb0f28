package rdma

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/ark-sched/ark/collective"
)

// errProtocol is wrapped when the peer breaks the data-path protocol
// (a chunk larger than a slot, more chunks than credits, a wrong opcode).
var errProtocol = errors.New("rdma: protocol violation")

// completion is what the data path reads of a struct ibv_wc.
type completion struct {
	id                          uint64
	status, opcode, imm, vendor uint32
}

// queuePair is the verbs a conn uses: verbsQP over libibverbs, and the
// tests' in-memory fake. mem is the one registered region; base is the
// address of mem[0] as the NIC and the peer see it.
type queuePair interface {
	num() uint32
	mem() []byte
	base() uint64
	key() uint32
	connect(self portInfo, peer *wireInfo, trafficClass, ackTimeout int) error
	postWrite(id uint64, off, n int, raddr uint64, rkey uint32, imm uint32, withImm bool) error
	postRecv(id uint64) error
	pollSend(out []completion) (int, error)
	pollRecv(out []completion) (int, error)
	destroy() error
}

// creditTag marks the work request ids of credit writes.
const creditTag = 1 << 63

// layout is where a connection's parts sit in its registered region:
// receive ring, send staging (same geometry), then the control words:
// word 0 is the credit word the peer writes (chunks it freed), words
// 1..slots are the sources of our own credit writes.
type layout struct{ slots, slotBytes int }

func (l layout) ringOff() int    { return 0 }
func (l layout) stagingOff() int { return l.slots * l.slotBytes }
func (l layout) ctlOff() int     { return 2 * l.slots * l.slotBytes }
func (l layout) size() int       { return l.ctlOff() + (1+l.slots)*8 }

// conn is a collective.Conn over one RC queue pair. Send and Recv each hold
// their own mutex, so one goroutine may send while another receives; the
// send completion queue, which carries both directions' writes (data from
// Send, credits from Recv), is polled under sqMu.
type conn struct {
	q      queuePair
	side   net.Conn // TCP side channel: kept open; its EOF means the peer closed
	dev    *devRef
	peer   int
	lay    layout
	mem    []byte
	rkey   uint32 // the peer's
	rRing  uint64 // the peer's ring address
	rCred  uint64 // the peer's credit word address
	credit *uint64

	deadline atomic.Int64 // UnixNano; 0 is none
	closed   atomic.Bool
	peerGone atomic.Bool
	failMu   sync.Mutex
	failErr  error

	sendMu sync.Mutex
	sent   uint64 // chunks posted

	sqMu       sync.Mutex
	sendDone   uint64 // data writes completed
	creditDone uint64 // credit writes completed

	recvMu       sync.Mutex
	rx           *rxRing
	creditPosted uint64

	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

func newConn(q queuePair, side net.Conn, dev *devRef, peer int, lay layout, pw *wireInfo) *conn {
	c := &conn{
		q: q, side: side, dev: dev, peer: peer, lay: lay, mem: q.mem(),
		rkey: pw.RKey, rRing: pw.RingAddr, rCred: pw.CreditAddr,
		rx: newRxRing(lay.slots, lay.slotBytes),
	}
	c.credit = c.word(0)
	return c
}

// start begins watching the side channel, once Connect no longer reads
// from it (the verdict).
func (c *conn) start() {
	c.wg.Add(1)
	go c.watch()
}

// word is control word i of the registered region.
func (c *conn) word(i int) *uint64 {
	return (*uint64)(unsafe.Pointer(&c.mem[c.lay.ctlOff()+8*i]))
}

// watch marks the peer gone when the side channel ends (the peer closed
// its conn or its process died); it returns when either side closes it.
func (c *conn) watch() {
	defer c.wg.Done()
	var b [16]byte
	for {
		if _, err := c.side.Read(b[:]); err != nil {
			c.peerGone.Store(true)
			return
		}
	}
}

func (c *conn) fail(err error) {
	c.failMu.Lock()
	if c.failErr == nil {
		c.failErr = err
	}
	c.failMu.Unlock()
}

func (c *conn) failure() error {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	return c.failErr
}

// check returns why a call must stop now: closed, broken, or past its deadline.
func (c *conn) check(dir string) error {
	if c.closed.Load() {
		return collective.ErrClosed
	}
	if err := c.failure(); err != nil {
		return err
	}
	if d := c.deadline.Load(); d != 0 && time.Now().UnixNano() >= d {
		return fmt.Errorf("rdma %s rank %d: %w", dir, c.peer, os.ErrDeadlineExceeded)
	}
	return nil
}

// backoff paces a polling loop: busy polls first (a live link completes
// in microseconds), then yields, then sleeps up to 100us per round.
func backoff(spins int) {
	switch {
	case spins < 64:
	case spins < 128:
		runtime.Gosched()
	default:
		time.Sleep(min(time.Duration(spins-127)*5*time.Microsecond, 100*time.Microsecond))
	}
}

var wcStatus = [...]string{"success", "local length error", "local QP operation error", "local EE context error",
	"local protection error", "flushed", "memory window bind error", "bad response", "local access error",
	"remote invalid request", "remote access error", "remote operation error", "transport retries exceeded",
	"RNR retries exceeded", "local RDD violation", "remote invalid RD request", "remote aborted",
	"invalid EE context number", "invalid EE context state", "fatal error", "response timeout", "general error"}

func statusName(s uint32) string {
	if int(s) < len(wcStatus) {
		return wcStatus[s]
	}
	return fmt.Sprintf("status %d", s)
}

func (c *conn) completionErr(what string, w completion) error {
	return errorf("%s to rank %d failed: %s (vendor error %#x)", what, c.peer, statusName(w.status), w.vendor)
}

// pollSend reaps send completions and returns the completed counts.
func (c *conn) pollSend() (done, creditDone uint64, err error) {
	c.sqMu.Lock()
	defer c.sqMu.Unlock()
	var wcs [16]completion
	n, err := c.q.pollSend(wcs[:])
	if err != nil {
		c.fail(err)
	}
	for _, w := range wcs[:n] {
		switch {
		case w.status != wcSuccess:
			c.fail(c.completionErr("RDMA write", w))
		case w.id&creditTag != 0:
			c.creditDone++
		default:
			c.sendDone++
		}
	}
	return c.sendDone, c.creditDone, c.failure()
}

// pollRecv reaps receive completions (one per chunk written with an
// immediate), records them in the ring and re-posts the receive.
func (c *conn) pollRecv() (int, error) {
	var wcs [16]completion
	n, err := c.q.pollRecv(wcs[:])
	if err != nil {
		c.fail(err)
		return 0, err
	}
	for _, w := range wcs[:n] {
		switch {
		case w.status != wcSuccess:
			c.fail(c.completionErr("receive", w))
		case w.opcode != wcRecvRDMAImm:
			c.fail(fmt.Errorf("receive completion opcode %d from rank %d: %w", w.opcode, c.peer, errProtocol))
		default:
			if err := c.rx.arrive(w.imm); err != nil {
				c.fail(fmt.Errorf("rank %d: %w", c.peer, err))
			} else if err := c.q.postRecv(w.id); err != nil {
				c.fail(err)
			}
		}
	}
	return n, c.failure()
}

// Send implements collective.Conn: each chunk of up to one slot is staged
// and written into the peer's ring once a credit allows it. It returns
// when every chunk is posted; the NIC completes them in order.
func (c *conn) Send(p []byte) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if err := c.check("send"); err != nil {
		return err
	}
	sb := c.lay.slotBytes
	for len(p) > 0 {
		n := min(len(p), sb)
		for spins := 0; ; spins++ {
			done, _, err := c.pollSend()
			if err != nil {
				return err
			}
			if canPost(c.sent, atomic.LoadUint64(c.credit), done, c.lay.slots) {
				break
			}
			if err := c.check("send"); err != nil {
				return err
			}
			if c.peerGone.Load() {
				return fmt.Errorf("rdma send rank %d: peer closed the connection: %w", c.peer, io.ErrClosedPipe)
			}
			backoff(spins)
		}
		s := slotOf(c.sent, c.lay.slots)
		copy(c.mem[c.lay.stagingOff()+s*sb:], p[:n])
		if err := c.q.postWrite(c.sent, c.lay.stagingOff()+s*sb, n, c.rRing+uint64(s*sb), c.rkey, uint32(n), true); err != nil {
			c.fail(err)
			return err
		}
		c.sent++
		p = p[n:]
	}
	return nil
}

// Recv implements collective.Conn.
func (c *conn) Recv(p []byte) error {
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	if err := c.check("recv"); err != nil {
		return err
	}
	ring := c.mem[c.lay.ringOff():c.lay.stagingOff()]
	for spins := 0; len(p) > 0; {
		n, freed := c.rx.read(p, ring)
		p = p[n:]
		if freed > 0 {
			if err := c.returnCredit(); err != nil {
				return err
			}
		}
		if len(p) == 0 {
			break
		}
		got, err := c.pollRecv()
		if err != nil {
			return err
		}
		if got > 0 || n > 0 {
			spins = 0
			continue
		}
		if err := c.check("recv"); err != nil {
			return err
		}
		if c.peerGone.Load() {
			// The peer drains its writes before closing the side channel,
			// so what it sent is in the completion queue by now.
			if got, err := c.pollRecv(); err != nil || got > 0 {
				continue
			}
			return io.EOF
		}
		backoff(spins)
		spins++
	}
	return nil
}

// returnCredit writes the number of chunks consumed into the peer's credit
// word, from a source word of its own that no credit write in flight uses.
func (c *conn) returnCredit() error {
	for spins := 0; ; spins++ {
		_, cdone, err := c.pollSend()
		if err != nil {
			return err
		}
		if c.creditPosted-cdone < uint64(c.lay.slots) {
			break
		}
		if err := c.check("recv"); err != nil {
			return err
		}
		backoff(spins)
	}
	i := 1 + slotOf(c.creditPosted, c.lay.slots)
	atomic.StoreUint64(c.word(i), c.rx.consumed)
	if err := c.q.postWrite(creditTag|c.creditPosted, c.lay.ctlOff()+8*i, 8, c.rCred, c.rkey, 0, false); err != nil {
		c.fail(err)
		return err
	}
	c.creditPosted++
	return nil
}

// SetDeadline implements collective.Conn; every polling loop checks it.
func (c *conn) SetDeadline(t time.Time) error {
	if t.IsZero() {
		c.deadline.Store(0)
	} else {
		c.deadline.Store(max(t.UnixNano(), 1))
	}
	return nil
}

// drainFor bounds how long Close waits for its writes to complete, so
// data sent just before Close reaches the peer, as with TCP.
const drainFor = 500 * time.Millisecond

// Close implements collective.Conn: it stops pending calls, lets posted
// writes complete (bounded), closes the side channel (the peer's calls
// then fail) and releases the queue pair and its memory.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.sendMu.Lock()
		defer c.sendMu.Unlock()
		c.recvMu.Lock()
		defer c.recvMu.Unlock()
		for end := time.Now().Add(drainFor); c.failure() == nil && !c.peerGone.Load() && time.Now().Before(end); {
			done, cdone, err := c.pollSend()
			if err != nil || done == c.sent && cdone == c.creditPosted {
				break
			}
			time.Sleep(10 * time.Microsecond)
		}
		c.side.Close()
		c.wg.Wait()
		c.closeErr = c.q.destroy()
		c.dev.release()
	})
	return c.closeErr
}
