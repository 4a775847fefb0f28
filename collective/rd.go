package collective

// Recursive doubling all-reduce (latency-optimal for small messages): with p
// the largest power of two <= n and rem = n-p, ranks below 2*rem pair up
// first (even ranks hand their data to the odd neighbour and wait for the
// result), then the p active ranks exchange full buffers with partners at
// distance 1, 2, 4, ... and reduce, log2(p) rounds. Both partners compute
// a+b from the same two operands, so every rank ends bit-identical.

// rdInline is the largest message sent on the engine goroutine itself
// before receiving: both sides' sends fit in socket buffers and shm rings.
const rdInline = 4 << 10

type rdSendJob struct {
	conn Conn
	buf  []byte
}

func rdGeometry(n int) (p, rem int) {
	p = 1
	for p*2 <= n {
		p *= 2
	}
	return p, n - p
}

// rdPartners lists the peers rank talks to in recursive doubling.
func rdPartners(rank, n int) []int {
	if n == 1 {
		return nil
	}
	p, rem := rdGeometry(n)
	var out []int
	newRank := rank - rem
	if rank < 2*rem {
		if rank%2 == 0 {
			return []int{rank + 1}
		}
		out = append(out, rank-1)
		newRank = rank / 2
	}
	for mask := 1; mask < p; mask <<= 1 {
		out = append(out, rdActual(newRank^mask, rem))
	}
	return out
}

func rdActual(newRank, rem int) int {
	if newRank < rem {
		return newRank*2 + 1
	}
	return newRank + rem
}

// rdSender sends for recursive doubling while the engine receives.
func (c *Communicator) rdSender() {
	defer c.wg.Done()
	for {
		select {
		case j := <-c.rdSend:
			c.rdDone <- j.conn.Send(j.buf)
		case <-c.stop:
			return
		}
	}
}

func (c *Communicator) rdScratch(n int) []byte {
	if cap(c.scratch) < n {
		c.scratch = make([]byte, n) // grows once to the largest small message
	}
	return c.scratch[:n]
}

func (c *Communicator) sendTo(peer int, b []byte) error {
	if err := c.conns[peer][0].Send(b); err != nil {
		return &linkErr{peer: peer, dir: "send to", err: err}
	}
	return nil
}

func (c *Communicator) recvFrom(peer int, b []byte) error {
	if err := c.conns[peer][0].Recv(b); err != nil {
		return &linkErr{peer: peer, dir: "recv from", err: err}
	}
	return nil
}

// exchange sends out to peer while receiving in from it.
func (c *Communicator) exchange(peer int, out, in []byte) error {
	if len(out) <= rdInline {
		if err := c.sendTo(peer, out); err != nil {
			return err
		}
		return c.recvFrom(peer, in)
	}
	select {
	case c.rdSend <- rdSendJob{conn: c.conns[peer][0], buf: out}:
	case <-c.stop:
		return ErrClosed
	}
	rerr := c.recvFrom(peer, in)
	if rerr != nil {
		c.interrupt() // the sender may be blocked on a peer that is gone
	}
	serr := <-c.rdDone
	if rerr != nil {
		return rerr
	}
	if serr != nil {
		return &linkErr{peer: peer, dir: "send to", err: serr}
	}
	return nil
}

func (c *Communicator) rdAllReduce(buf []byte, dt DType, op ReduceOp) error {
	n, rank := c.size, c.rank
	p, rem := rdGeometry(n)
	tmp := c.rdScratch(len(buf))
	newRank := rank - rem
	if rank < 2*rem {
		if rank%2 == 0 {
			if err := c.sendTo(rank+1, buf); err != nil {
				return err
			}
			return c.recvFrom(rank+1, buf) // final (already averaged) result
		}
		if err := c.recvFrom(rank-1, tmp); err != nil {
			return err
		}
		reduceInto(dt, op, buf, tmp, 0)
		newRank = rank / 2
	}
	for mask := 1; mask < p; mask <<= 1 {
		peer := rdActual(newRank^mask, rem)
		if err := c.exchange(peer, buf, tmp); err != nil {
			return err
		}
		reduceInto(dt, op, buf, tmp, 0)
	}
	if op == Avg {
		scaleInto(dt, buf, n)
	}
	if rank < 2*rem {
		return c.sendTo(rank-1, buf)
	}
	return nil
}
