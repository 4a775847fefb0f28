package collective

import (
	"sync/atomic"
)

type ringKind uint8

const (
	ringAllReduce ringKind = iota + 1
	ringReduceScatter
	ringAllGather
	ringBroadcast
	ringSend // point-to-point: root is the peer
	ringRecv
	ringSendRecv // send buf while receiving into rbuf
)

// ringJob is the one in-flight ring operation, shared by every channel's
// sender and receiver. The buffer is split into blocks (one per rank, or one
// for broadcast); each block into one part per channel; each part into chunks
// of at most ChunkBytes. Channel ch moves only its parts, over its own
// connections, so channels run in parallel.
//
// Schedule for rank r of n (block indices mod n), as in NCCL's ring:
//
//	reduce-scatter step s (0 <= s < n-1): send block r-s-1, receive block r-s-2 and reduce it
//	all-gather     step t (0 <= t < n-1): send block r-t,   receive block r-t-1 and store it
//
// After reduce-scatter rank r holds block r fully reduced. The sender of step
// s >= lag sends exactly what the receiver finished at step s-lag, chunk by
// chunk, which pipelines the ring: a chunk is forwarded as soon as it arrived.
type ringJob struct {
	kind    ringKind
	buf     []byte
	rbuf    []byte // receive buffer of ringSendRecv (else buf)
	elems   int
	dt      DType
	op      ReduceOp
	root    int
	aborted atomic.Bool
	results chan error
}

// steps returns how many send and receive steps this rank makes, and the lag
// between a receive step and the send step that forwards its data.
func (j *ringJob) steps(rank, n int) (send, recv, lag int) {
	switch j.kind {
	case ringAllReduce:
		return 2 * (n - 1), 2 * (n - 1), 1
	case ringReduceScatter, ringAllGather:
		return n - 1, n - 1, 1
	case ringSend:
		return 1, 0, 1
	case ringRecv:
		return 0, 1, 1
	case ringSendRecv:
		return 1, 1, 1
	case ringBroadcast:
		pos := (rank - j.root + n) % n
		if pos > 0 {
			recv = 1
		}
		if pos < n-1 {
			send = 1
		}
		if pos == 0 {
			return send, recv, 1 // the root sends its own data, no waiting
		}
		return send, recv, 0
	}
	return 0, 0, 0
}

func (j *ringJob) blocks(n int) int {
	switch j.kind {
	case ringBroadcast, ringSend, ringRecv, ringSendRecv:
		return 1
	}
	return n
}

// peers are the ranks this rank sends to and receives from.
func (j *ringJob) peers(rank, n int) (to, from int) {
	if j.kind == ringSend || j.kind == ringRecv || j.kind == ringSendRecv {
		return j.root, j.root
	}
	return (rank + 1) % n, mod(rank-1, n)
}

func mod(a, n int) int { return ((a % n) + n) % n }

// sendBlock is the block sent at step s.
func (j *ringJob) sendBlock(s, rank, n int) int {
	switch j.kind {
	case ringAllReduce:
		if s < n-1 {
			return mod(rank-s-1, n)
		}
		return mod(rank-(s-(n-1)), n)
	case ringReduceScatter:
		return mod(rank-s-1, n)
	case ringAllGather:
		return mod(rank-s, n)
	}
	return 0
}

// recvBlock is the block received at step s, whether it is reduced (else
// stored), and whether this is its final reduction (Avg divides then).
func (j *ringJob) recvBlock(s, rank, n int) (blk int, reduce, final bool) {
	switch j.kind {
	case ringAllReduce:
		if s < n-1 {
			return mod(rank-s-2, n), true, s == n-2
		}
		return mod(rank-(s-(n-1))-1, n), false, false
	case ringReduceScatter:
		return mod(rank-s-2, n), true, s == n-2
	case ringAllGather:
		return mod(rank-s-1, n), false, false
	}
	return 0, false, false
}

// partRange is the byte range of channel ch's part of block blk.
func (j *ringJob) partRange(blk, nblocks, ch, channels int) (lo, hi int) {
	blo, bhi := Partition(j.elems, nblocks, blk)
	plo, phi := Partition(bhi-blo, channels, ch)
	es := j.dt.Size()
	return (blo + plo) * es, (blo + phi) * es
}

// ring runs one ring operation on every channel and waits for all of them.
func (c *Communicator) ring(kind ringKind, buf []byte, elems int, dt DType, op ReduceOp, root int) error {
	j := &c.job
	j.kind, j.buf, j.elems, j.dt, j.op, j.root = kind, buf, elems, dt, op, root
	j.aborted.Store(false)
	for _, w := range c.workers {
		w.done.Store(0)
		w.sent.Store(0)
		select { // drop stale wake-ups from the previous job
		case <-w.notify:
		default:
		}
		select {
		case <-w.sentNtf:
		default:
		}
	}
	var first error
	sent := 0
dispatch:
	for _, w := range c.workers {
		for _, q := range [2]chan *ringJob{w.sendQ, w.recvQ} {
			select {
			case q <- j:
				sent++
			case <-c.stop: // closing: the workers may be gone
				first = ErrClosed
				j.aborted.Store(true)
				break dispatch
			}
		}
	}
	for range sent {
		if err := <-j.results; err != nil && first == nil {
			first = err
			j.aborted.Store(true)
			c.interrupt() // the operation failed: unblock the other channels
		}
	}
	j.buf = nil
	return first
}

// chanWorker owns one channel: a sender and a receiver goroutine.
type chanWorker struct {
	c       *Communicator
	ch      int
	chunk   int
	sendQ   chan *ringJob
	recvQ   chan *ringJob
	done    atomic.Int64  // chunks the receiver finished in the current job
	notify  chan struct{} // receiver -> sender wake-up, cap 1
	sent    atomic.Int64  // chunks the sender finished in the current job
	sentNtf chan struct{} // sender -> receiver wake-up, cap 1
	scratch []byte        // receive area for reductions over copying transports

	// reduce sink state for in-place receivers
	sinkDst []byte
	sinkJob *ringJob
	sinkDiv int
}

func (w *chanWorker) poke() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
	select {
	case w.sentNtf <- struct{}{}:
	default:
	}
}

func (w *chanWorker) sendLoop() {
	defer w.c.wg.Done()
	for {
		select {
		case j := <-w.sendQ:
			j.results <- w.send(j)
		case <-w.c.stop:
			return
		}
	}
}

func (w *chanWorker) recvLoop() {
	defer w.c.wg.Done()
	for {
		select {
		case j := <-w.recvQ:
			j.results <- w.recv(j)
		case <-w.c.stop:
			return
		}
	}
}

func (w *chanWorker) chunkFor(dt DType) int {
	es := dt.Size()
	return max(w.chunk/es*es, es)
}

func (w *chanWorker) send(j *ringJob) error {
	c := w.c
	n, rank := c.size, c.rank
	steps, _, lag := j.steps(rank, n)
	if steps == 0 {
		return nil
	}
	right, _ := j.peers(rank, n)
	conn := c.conns[right][w.ch]
	nb, channels, chunk := j.blocks(n), len(c.workers), w.chunkFor(j.dt)
	var need int64
	for s := range steps {
		lo, hi := j.partRange(j.sendBlock(s, rank, n), nb, w.ch, channels)
		for off := lo; off < hi; off += chunk {
			end := min(off+chunk, hi)
			if s >= lag {
				need++
				for w.done.Load() < need {
					if j.aborted.Load() {
						return errOpAborted
					}
					select {
					case <-w.notify:
					case <-c.stop:
						return ErrClosed
					}
				}
			}
			if err := conn.Send(j.buf[off:end]); err != nil {
				return &linkErr{peer: right, dir: "send to", err: err}
			}
			w.sent.Add(1)
			select {
			case w.sentNtf <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

func (w *chanWorker) recv(j *ringJob) error {
	c := w.c
	n, rank := c.size, c.rank
	_, steps, _ := j.steps(rank, n)
	if steps == 0 {
		return nil
	}
	_, left := j.peers(rank, n)
	conn := c.conns[left][w.ch]
	ipr, inPlace := conn.(inPlaceReceiver)
	nb, channels, chunk := j.blocks(n), len(c.workers), w.chunkFor(j.dt)
	var overwrite int64
	for s := range steps {
		blk, reduce, final := j.recvBlock(s, rank, n)
		// In all-reduce, all-gather step t overwrites the block the sender
		// sent at reduce-scatter step t, chunk for chunk in the same order.
		// The network already orders the two (the new data depends on the
		// old having been sent); waiting on the sender's count makes that
		// explicit to the memory model and costs one atomic load.
		guard := j.kind == ringAllReduce && s >= n-1
		div := 0
		if final && j.op == Avg {
			div = n
		}
		lo, hi := j.partRange(blk, nb, w.ch, channels)
		for off := lo; off < hi; off += chunk {
			end := min(off+chunk, hi)
			if guard {
				overwrite++
				for w.sent.Load() < overwrite {
					if j.aborted.Load() {
						return errOpAborted
					}
					select {
					case <-w.sentNtf:
					case <-c.stop:
						return ErrClosed
					}
				}
			}
			var err error
			switch {
			case !reduce && j.rbuf != nil:
				err = conn.Recv(j.rbuf[off:end])
			case !reduce:
				err = conn.Recv(j.buf[off:end])
			case inPlace:
				w.sinkDst, w.sinkJob, w.sinkDiv = j.buf[off:end], j, div
				err = ipr.RecvInPlace(end-off, j.dt.Size(), w)
				w.sinkDst, w.sinkJob = nil, nil
			default:
				tmp := w.scratch[:end-off]
				if err = conn.Recv(tmp); err == nil {
					reduceInto(j.dt, j.op, j.buf[off:end], tmp, div)
				}
			}
			if err != nil {
				return &linkErr{peer: left, dir: "recv from", err: err}
			}
			w.done.Add(1)
			w.poke()
		}
	}
	return nil
}

// sink reduces a segment received in place into the destination chunk.
func (w *chanWorker) sink(off int, seg []byte) {
	reduceInto(w.sinkJob.dt, w.sinkJob.op, w.sinkDst[off:off+len(seg)], seg, w.sinkDiv)
}
