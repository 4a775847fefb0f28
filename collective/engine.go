package collective

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

type opKind uint8

const (
	opAllReduce opKind = iota + 1
	opReduceScatter
	opAllGather
	opBroadcast
	opBarrier
	opSend
	opRecv
	opSendRecv
)

var opNames = [...]string{"", "allreduce", "reducescatter", "allgather", "broadcast", "barrier", "send", "recv", "sendrecv"}

func (k opKind) String() string { return opNames[k] }

// request is one queued operation.
type request struct {
	kind     opKind
	buf, out Buffer
	op       ReduceOp
	root     int
	ctx      context.Context
	deadline time.Time
	async    bool
	algo     string // what ran, for Handle.Algo and benchmarks
	err      error
	done     chan struct{} // cap 1 (pooled, blocking) or closed (async)
}

func (r *request) complete(err error) {
	r.err = err
	if r.async {
		close(r.done)
	} else {
		r.done <- struct{}{}
	}
}

// Handle tracks a non-blocking operation.
type Handle struct{ r *request }

// Wait blocks until the operation completes and returns its error. The
// operation's deadline bounds the wait.
func (h *Handle) Wait() error {
	<-h.r.done
	return h.r.err
}

// Test reports whether the operation completed, and its error if so.
func (h *Handle) Test() (bool, error) {
	select {
	case <-h.r.done:
		return true, h.r.err
	default:
		return false, nil
	}
}

// Algo names the algorithm that ran ("ring", "rd", "local"); valid after completion.
func (h *Handle) Algo() string {
	<-h.r.done
	return h.r.algo
}

// AllReduce reduces buf across all ranks in place with op.
func (c *Communicator) AllReduce(ctx context.Context, buf Buffer, op ReduceOp) error {
	return c.do(ctx, opAllReduce, buf, Buffer{}, op, 0)
}

// AllReduceAsync is the non-blocking AllReduce.
func (c *Communicator) AllReduceAsync(ctx context.Context, buf Buffer, op ReduceOp) *Handle {
	return c.doAsync(ctx, opAllReduce, buf, Buffer{}, op, 0)
}

// ReduceScatter reduces send across ranks and leaves rank r's share,
// elements Partition(send.Len(), Size(), r), in recv. send is not modified.
func (c *Communicator) ReduceScatter(ctx context.Context, send, recv Buffer, op ReduceOp) error {
	return c.do(ctx, opReduceScatter, send, recv, op, 0)
}

// ReduceScatterAsync is the non-blocking ReduceScatter.
func (c *Communicator) ReduceScatterAsync(ctx context.Context, send, recv Buffer, op ReduceOp) *Handle {
	return c.doAsync(ctx, opReduceScatter, send, recv, op, 0)
}

// AllGather places every rank's send at Partition(recv.Len(), Size(), r) of recv.
func (c *Communicator) AllGather(ctx context.Context, send, recv Buffer) error {
	return c.do(ctx, opAllGather, send, recv, 0, 0)
}

// AllGatherAsync is the non-blocking AllGather.
func (c *Communicator) AllGatherAsync(ctx context.Context, send, recv Buffer) *Handle {
	return c.doAsync(ctx, opAllGather, send, recv, 0, 0)
}

// Broadcast copies root's buf to every rank's buf.
func (c *Communicator) Broadcast(ctx context.Context, buf Buffer, root int) error {
	return c.do(ctx, opBroadcast, buf, Buffer{}, 0, root)
}

// BroadcastAsync is the non-blocking Broadcast.
func (c *Communicator) BroadcastAsync(ctx context.Context, buf Buffer, root int) *Handle {
	return c.doAsync(ctx, opBroadcast, buf, Buffer{}, 0, root)
}

// Barrier returns once every rank has entered it.
func (c *Communicator) Barrier(ctx context.Context) error {
	return c.do(ctx, opBarrier, Buffer{}, Buffer{}, Sum, 0)
}

// BarrierAsync is the non-blocking Barrier.
func (c *Communicator) BarrierAsync(ctx context.Context) *Handle {
	return c.doAsync(ctx, opBarrier, Buffer{}, Buffer{}, Sum, 0)
}

// Send streams buf to peer, split across the channels; peer must call Recv
// with a buffer of the same size. Only ring neighbours (rank±1) are directly
// connected; Send and Recv are what the benchmark's point-to-point baseline
// and pipeline-parallel stages use.
func (c *Communicator) Send(ctx context.Context, buf Buffer, peer int) error {
	return c.do(ctx, opSend, buf, Buffer{}, 0, peer)
}

// Recv receives what peer sends with Send into buf.
func (c *Communicator) Recv(ctx context.Context, buf Buffer, peer int) error {
	return c.do(ctx, opRecv, buf, Buffer{}, 0, peer)
}

// SendRecv sends send to peer while receiving recv from it (a full-duplex
// exchange; the peer calls SendRecv with the roles mirrored). send and recv
// have the same length.
func (c *Communicator) SendRecv(ctx context.Context, send, recv Buffer, peer int) error {
	return c.do(ctx, opSendRecv, send, recv, 0, peer)
}

// SendRecvAsync is the non-blocking SendRecv.
func (c *Communicator) SendRecvAsync(ctx context.Context, send, recv Buffer, peer int) *Handle {
	return c.doAsync(ctx, opSendRecv, send, recv, 0, peer)
}

// SetTuning overrides the algorithm choice (AlgoAuto, AlgoRing, AlgoRD) and
// the auto crossover (0: SmallMaxFor(Size())) for later operations. Every rank must make the same
// call at the same point of its sequence (the benchmark's tuning pass uses it).
func (c *Communicator) SetTuning(algo string, smallMax int) error {
	switch algo {
	case AlgoAuto, AlgoRing, AlgoRD:
	default:
		return fmt.Errorf("algorithm %q: %w", algo, ErrInvalid)
	}
	if smallMax <= 0 {
		smallMax = SmallMaxFor(c.size)
	}
	c.tuning.Store(&tuning{algo: algo, smallMax: smallMax})
	return nil
}

func (c *Communicator) check(kind opKind, buf, out Buffer, op ReduceOp, root int) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%v: %s: %w", kind, fmt.Sprintf(format, a...), ErrInvalid)
	}
	if kind == opBarrier {
		return nil
	}
	if buf.dt != Float32 && buf.dt != BFloat16 {
		return bad("unsupported dtype %v", buf.dt)
	}
	switch kind {
	case opAllReduce, opReduceScatter:
		if op != Sum && op != Avg && op != Max {
			return bad("unsupported reduction %v", op)
		}
	case opBroadcast:
		if root < 0 || root >= c.size {
			return bad("root %d of %d", root, c.size)
		}
	case opSend, opRecv, opSendRecv:
		if kind == opSendRecv && (out.dt != buf.dt || out.n != buf.n) {
			return bad("recv has %d %v, send %d %v", out.n, out.dt, buf.n, buf.dt)
		}
		if root < 0 || root >= c.size || root == c.rank || c.conns[root][0] == nil || c.conns[root][len(c.conns[root])-1] == nil {
			return bad("rank %d is not a directly connected neighbour of rank %d", root, c.rank)
		}
	}
	switch kind {
	case opReduceScatter:
		lo, hi := Partition(buf.n, c.size, c.rank)
		if out.dt != buf.dt || out.n != hi-lo {
			return bad("recv has %d %v, want %d %v (share of %d)", out.n, out.dt, hi-lo, buf.dt, buf.n)
		}
	case opAllGather:
		lo, hi := Partition(out.n, c.size, c.rank)
		if out.dt != buf.dt || buf.n != hi-lo {
			return bad("send has %d %v, want %d %v (share of %d)", buf.n, buf.dt, hi-lo, out.dt, out.n)
		}
	}
	return nil
}

func (c *Communicator) newRequest(ctx context.Context, kind opKind, buf, out Buffer, op ReduceOp, root int, async bool) *request {
	var r *request
	if async {
		r = &request{done: make(chan struct{})}
	} else {
		r = c.reqPool.Get().(*request)
	}
	r.kind, r.buf, r.out, r.op, r.root, r.ctx, r.async, r.algo, r.err = kind, buf, out, op, root, ctx, async, "", nil
	r.deadline = time.Now().Add(c.o.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(r.deadline) {
		r.deadline = d
	}
	return r
}

// submit queues r; false if the Communicator is closed.
func (c *Communicator) submit(r *request) bool {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closed {
		return false
	}
	c.reqs <- r
	return true
}

func (c *Communicator) do(ctx context.Context, kind opKind, buf, out Buffer, op ReduceOp, root int) error {
	if err := c.check(kind, buf, out, op, root); err != nil {
		return err
	}
	r := c.newRequest(ctx, kind, buf, out, op, root, false)
	if !c.submit(r) {
		c.reqPool.Put(r)
		return ErrClosed
	}
	<-r.done
	err := r.err
	r.buf, r.out, r.ctx = Buffer{}, Buffer{}, nil
	c.reqPool.Put(r)
	return err
}

func (c *Communicator) doAsync(ctx context.Context, kind opKind, buf, out Buffer, op ReduceOp, root int) *Handle {
	r := c.newRequest(ctx, kind, buf, out, op, root, true)
	if err := c.check(kind, buf, out, op, root); err != nil {
		r.complete(err)
	} else if !c.submit(r) {
		r.complete(ErrClosed)
	}
	return &Handle{r: r}
}

// startEngine starts the progress engine and the channel workers.
func (c *Communicator) startEngine() {
	c.tuning.Store(&tuning{algo: c.o.Algo, smallMax: c.o.SmallMax})
	c.rdSend = make(chan rdSendJob)
	c.rdDone = make(chan error, 1)
	c.job.results = make(chan error, 2*c.o.Channels)
	chunk := c.o.ChunkBytes &^ 7
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch := range c.o.Channels {
		w := &chanWorker{c: c, ch: ch, sendQ: make(chan *ringJob), recvQ: make(chan *ringJob),
			notify: make(chan struct{}, 1), sentNtf: make(chan struct{}, 1), scratch: make([]byte, chunk), chunk: chunk}
		c.workers = append(c.workers, w)
		c.wg.Add(2)
		go w.sendLoop()
		go w.recvLoop()
	}
	c.wg.Add(2)
	go c.rdSender()
	go c.engine()
}

func (c *Communicator) engine() {
	defer c.wg.Done()
	for {
		select {
		case r := <-c.reqs:
			c.execute(r)
		case <-c.stop:
			for {
				select {
				case r := <-c.reqs:
					r.complete(c.Err())
				default:
					return
				}
			}
		}
	}
}

// margin is kept from each deadline to name a stalled peer before it passes.
func (c *Communicator) margin() time.Duration {
	return min(max(c.o.Timeout/10, 20*time.Millisecond), 250*time.Millisecond)
}

func (c *Communicator) execute(r *request) {
	if err := c.Err(); err != nil {
		r.complete(err)
		return
	}
	seq := c.seq.Add(1)
	c.current.Store(r)
	defer c.current.Store(nil)
	var stopWatch func() bool
	if r.ctx.Done() != nil {
		stopWatch = context.AfterFunc(r.ctx, func() {
			if c.current.Load() == r && c.seq.Load() == seq {
				// Tell the others this rank gave up, then stop.
				pe := peerErr(c.rank, fmt.Sprintf("%v#%d", r.kind, seq), ErrAborted, context.Cause(r.ctx))
				c.fail(pe) // first, so this rank keeps its own cause, not the relay
				if c.ctrl != nil {
					c.ctrl.report(pe)
				}
			}
		})
	}
	// Arm the connections' deadlines. Setting them costs a timer update
	// per connection, so a deadline at most one margin earlier than wanted
	// is kept (the operation may fail up to a margin early, never late).
	margin := c.margin()
	inner := r.deadline.Add(-margin)
	if set := c.connDeadline; set.After(inner) || set.Before(inner.Add(-margin)) {
		for _, cn := range c.all {
			_ = cn.SetDeadline(inner)
		}
		c.connDeadline = inner
	}
	err := c.Err() // an abort may have raced with the deadlines above
	if err == nil {
		err = c.run(r)
	}
	if stopWatch != nil {
		stopWatch()
	}
	if err != nil {
		c.fail(c.diagnose(r, seq, err))
		err = c.Err()
	}
	r.complete(err)
}

func (c *Communicator) run(r *request) error {
	bytes := len(r.buf.b)
	switch r.kind {
	case opAllReduce:
		if c.size == 1 {
			r.algo = "local"
			return nil
		}
		tu := c.tuning.Load()
		algo := tu.algo
		if algo == AlgoAuto {
			algo = AlgoRing
			if bytes <= tu.smallMax {
				algo = AlgoRD
			}
		}
		r.algo = algo
		if algo == AlgoRD {
			return c.rdAllReduce(r.buf.b, r.buf.dt, r.op)
		}
		return c.ring(ringAllReduce, r.buf.b, r.buf.n, r.buf.dt, r.op, 0)
	case opReduceScatter:
		r.algo = "ring"
		if cap(c.rsWork) < bytes {
			c.rsWork = make([]byte, bytes) // grows once to the largest size used
		}
		work := c.rsWork[:bytes]
		copy(work, r.buf.b)
		if c.size > 1 { // with one rank every reduction is the identity
			if err := c.ring(ringReduceScatter, work, r.buf.n, r.buf.dt, r.op, 0); err != nil {
				return err
			}
		}
		lo, hi := Partition(r.buf.n, c.size, c.rank)
		es := r.buf.dt.Size()
		copy(r.out.b, work[lo*es:hi*es])
		return nil
	case opAllGather:
		r.algo = "ring"
		lo, _ := Partition(r.out.n, c.size, c.rank)
		copy(r.out.b[lo*r.out.dt.Size():], r.buf.b)
		if c.size == 1 {
			return nil
		}
		return c.ring(ringAllGather, r.out.b, r.out.n, r.out.dt, 0, 0)
	case opBroadcast:
		r.algo = "ring"
		if c.size == 1 {
			return nil
		}
		return c.ring(ringBroadcast, r.buf.b, r.buf.n, r.buf.dt, 0, r.root)
	case opSend, opRecv, opSendRecv:
		r.algo = "p2p"
		switch r.kind {
		case opSend:
			return c.ring(ringSend, r.buf.b, r.buf.n, r.buf.dt, 0, r.root)
		case opRecv:
			return c.ring(ringRecv, r.buf.b, r.buf.n, r.buf.dt, 0, r.root)
		}
		c.job.rbuf = r.out.b
		defer func() { c.job.rbuf = nil }()
		return c.ring(ringSendRecv, r.buf.b, r.buf.n, r.buf.dt, 0, r.root)
	case opBarrier:
		r.algo = "rd"
		if c.size == 1 {
			return nil
		}
		b := Float32s(c.barrierB[:])
		return c.rdAllReduce(b.b, Float32, Sum)
	}
	return fmt.Errorf("unknown op %d: %w", r.kind, ErrInvalid)
}

// linkErr is a transport failure on the link to peer.
type linkErr struct {
	peer int
	dir  string // "send" or "recv"
	err  error
}

func (e *linkErr) Error() string { return fmt.Sprintf("%s rank %d: %v", e.dir, e.peer, e.err) }
func (e *linkErr) Unwrap() error { return e.err }

// errOpAborted marks goroutines of an operation stopped because a sibling failed.
var errOpAborted = errors.New("operation aborted by a sibling channel")

// diagnose turns a raw failure into the error every rank should see: an
// abort from the coordinator wins; a timeout asks the coordinator which ranks
// never entered this operation and blames them; a broken link blames its peer.
// The verdict is reported to the coordinator, which relays it to all ranks.
func (c *Communicator) diagnose(r *request, seq uint64, err error) error {
	if b := c.Err(); b != nil {
		return b
	}
	op := fmt.Sprintf("%v#%d", r.kind, seq)
	var le *linkErr
	if !errors.As(err, &le) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var pe *PeerError
	if errors.Is(le.err, os.ErrDeadlineExceeded) {
		pe = peerErr(le.peer, op, ErrTimeout, fmt.Errorf("%s rank %d", le.dir, le.peer))
		if c.ctrl != nil {
			wait := time.Until(r.deadline)
			if lag, qerr := c.ctrl.lagging(seq, max(wait, 10*time.Millisecond)); qerr == nil && len(lag) > 0 {
				pe = peerErr(lag[0], op, ErrStalled, fmt.Errorf("did not enter the operation within the deadline (lagging ranks %v)", lag))
			}
		}
	} else {
		cause := le.err
		if errors.Is(cause, io.EOF) {
			cause = fmt.Errorf("connection closed by peer: %w", cause)
		}
		pe = peerErr(le.peer, op, ErrPeerLost, fmt.Errorf("%s: %w", le.dir, cause))
	}
	if c.ctrl == nil {
		return pe
	}
	// Report, then adopt the coordinator's verdict: it relays the first one
	// it hears (a dead rank's control connection closing, or the first
	// report), so every rank names the same culprit even when a survivor
	// that already failed exits and closes its links to the others.
	c.ctrl.report(pe)
	t := time.NewTimer(min(max(time.Until(r.deadline), 50*time.Millisecond), time.Second))
	defer t.Stop()
	select {
	case <-c.brokenCh:
		return c.Err()
	case <-t.C:
		return pe
	}
}
