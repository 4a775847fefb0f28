package rdma

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/ark-sched/ark/collective"
)

// An in-memory stand-in for an RDMA NIC, so the data path above the verbs
// (handshake, credits, ring, deadlines, close) runs in tests on machines
// without one. A write is executed at once by the posting goroutine: it
// copies into the peer's region (8-byte aligned words atomically, as the
// credit word is read), consumes one of the peer's posted receives when it
// carries an immediate, and queues the completions. A write to a destroyed
// queue pair completes with "transport retries exceeded", as a dead peer's
// would after the ack timeouts; a write with an immediate that finds no
// posted receive fails with "RNR retries exceeded" (real queue pairs here
// retry RNR forever, so this only flags a missing re-post).

type fakeFabric struct {
	mu   sync.Mutex
	qps  map[uint32]*fakeQP
	next uint32
}

var fabric = &fakeFabric{qps: map[uint32]*fakeQP{}, next: 100}

type fakeOpener struct{ dev *fakeDevice }

func (o fakeOpener) open(*Transport, collective.Self) (device, error) {
	if o.dev != nil {
		return o.dev, nil
	}
	return &fakeDevice{}, nil
}

type fakeDevice struct {
	live   atomic.Int32 // queue pairs not destroyed
	closes atomic.Int32

	// Faults, for the connect-time probe's tests: newQP or connect fail
	// with failQP or failConnect; every write with an immediate from this
	// device's queue pairs lands with its first byte flipped (corrupt) or
	// completes without landing (drop).
	failQP, failConnect error
	corrupt, drop       bool
}

func (d *fakeDevice) name() string { return "fake0" }
func (d *fakeDevice) port() portInfo {
	return portInfo{Port: 1, LID: 7, MTU: 3, LinkLayer: linkLayerIB}
}
func (d *fakeDevice) close() error { d.closes.Add(1); return nil }

func (d *fakeDevice) newQP(memBytes, sendDepth, recvDepth int) (queuePair, error) {
	if d.failQP != nil {
		return nil, d.failQP
	}
	words := make([]uint64, (memBytes+7)/8)
	fabric.mu.Lock()
	fabric.next++
	q := &fakeQP{
		dev: d, qpn: fabric.next, words: words,
		buf:       unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), memBytes),
		baseAddr:  uint64(fabric.next) << 40,
		rkey:      fabric.next*7 + 1,
		sendDepth: sendDepth, recvDepth: recvDepth,
	}
	fabric.qps[q.qpn] = q
	fabric.mu.Unlock()
	d.live.Add(1)
	return q, nil
}

type fakeQP struct {
	dev                  *fakeDevice
	qpn, rkey            uint32
	words                []uint64
	buf                  []byte
	baseAddr             uint64
	sendDepth, recvDepth int

	mu          sync.Mutex
	peer        *fakeQP
	rts, dead   bool
	recvs       []uint64
	scq, rcq    []completion
	outstanding int // send work requests not yet polled
}

const (
	fakeRetryExceeded    = 12
	fakeRNRRetryExceeded = 13
)

func (q *fakeQP) num() uint32  { return q.qpn }
func (q *fakeQP) mem() []byte  { return q.buf }
func (q *fakeQP) base() uint64 { return q.baseAddr }
func (q *fakeQP) key() uint32  { return q.rkey }

func (q *fakeQP) connect(_ portInfo, peer *wireInfo, _, _ int) error {
	if q.dev.failConnect != nil {
		return q.dev.failConnect
	}
	fabric.mu.Lock()
	p := fabric.qps[peer.QPN]
	fabric.mu.Unlock()
	if p == nil || p.rkey != peer.RKey || peer.RingAddr < p.baseAddr {
		return fmt.Errorf("fake: no queue pair %d with rkey %d", peer.QPN, peer.RKey)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.peer, q.rts = p, true
	return nil
}

func (q *fakeQP) postWrite(id uint64, off, n int, raddr uint64, rkey uint32, imm uint32, withImm bool) error {
	q.mu.Lock()
	switch {
	case q.dead || !q.rts:
		q.mu.Unlock()
		return fmt.Errorf("fake: post_send on a queue pair not in RTS")
	case q.outstanding >= q.sendDepth:
		q.mu.Unlock()
		return fmt.Errorf("fake: send queue full (%d)", q.sendDepth)
	case off < 0 || n < 0 || off+n > len(q.buf):
		q.mu.Unlock()
		return fmt.Errorf("fake: local range %d+%d outside %d", off, n, len(q.buf))
	}
	q.outstanding++
	p := q.peer
	q.mu.Unlock()

	status := uint32(wcSuccess)
	p.mu.Lock()
	roff := int(raddr - p.baseAddr)
	switch {
	case p.dead:
		status = fakeRetryExceeded
	case rkey != p.rkey || raddr < p.baseAddr || roff+n > len(p.buf):
		status = 10 // remote access error
	case withImm && len(p.recvs) == 0:
		status = fakeRNRRetryExceeded
	case withImm && q.dev.drop:
		// lost on the way, yet acknowledged: the sender sees success
	default:
		if n == 8 && off%8 == 0 && roff%8 == 0 {
			atomic.StoreUint64(&p.words[roff/8], atomic.LoadUint64(&q.words[off/8]))
		} else {
			copy(p.buf[roff:roff+n], q.buf[off:off+n])
		}
		if withImm && q.dev.corrupt && n > 0 {
			p.buf[roff] ^= 0x5a
		}
		if withImm {
			rid := p.recvs[0]
			p.recvs = p.recvs[1:]
			p.rcq = append(p.rcq, completion{id: rid, opcode: wcRecvRDMAImm, imm: imm})
		}
	}
	p.mu.Unlock()

	q.mu.Lock()
	q.scq = append(q.scq, completion{id: id, status: status, opcode: wcRDMAWrite})
	q.mu.Unlock()
	return nil
}

func (q *fakeQP) postRecv(id uint64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.dead || len(q.recvs) >= q.recvDepth {
		return fmt.Errorf("fake: post_recv: dead %v or %d posted", q.dead, len(q.recvs))
	}
	q.recvs = append(q.recvs, id)
	return nil
}

func pop(cq *[]completion, out []completion) int {
	n := copy(out, *cq)
	*cq = (*cq)[n:]
	return n
}

func (q *fakeQP) pollSend(out []completion) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := pop(&q.scq, out)
	q.outstanding -= n
	return n, nil
}

func (q *fakeQP) pollRecv(out []completion) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return pop(&q.rcq, out), nil
}

func (q *fakeQP) destroy() error {
	q.mu.Lock()
	if q.dead {
		q.mu.Unlock()
		return fmt.Errorf("fake: queue pair %d destroyed twice", q.qpn)
	}
	q.dead = true
	q.mu.Unlock()
	fabric.mu.Lock()
	delete(fabric.qps, q.qpn)
	fabric.mu.Unlock()
	q.dev.live.Add(-1)
	return nil
}
