package cpu

import (
	"sync"
	"sync/atomic"
)

// job is one op's parallel body: run does items [lo, hi) on worker w
// (0 is the calling goroutine). Jobs are fields of the Device, passed by
// pointer, so dispatching one allocates nothing. A job must give the same
// result whichever worker runs which chunk (per-worker state is scratch
// only), so results are deterministic.
type job interface {
	run(w, lo, hi int)
}

// pool is a fixed set of worker goroutines owned by a Device: started by
// newPool, stopped by close. Work is handed out in chunks from an atomic
// counter rather than split statically, so a thread that the OS preempts
// (this machine is shared) does not hold everyone up at the barrier.
type pool struct {
	size  int
	wake  []chan int // per worker; the value is the worker's id
	wg    sync.WaitGroup
	quit  sync.WaitGroup
	next  atomic.Int64
	j     job
	n     int
	chunk int
	count int
}

func newPool(size int) *pool {
	p := &pool{size: size, wake: make([]chan int, size)}
	for w := 1; w < size; w++ {
		ch := make(chan int, 1)
		p.wake[w] = ch
		p.quit.Add(1)
		go func() {
			defer p.quit.Done()
			for id := range ch {
				p.work(id)
				p.wg.Done()
			}
		}()
	}
	return p
}

func (p *pool) close() {
	for w := 1; w < p.size; w++ {
		close(p.wake[w])
	}
	p.quit.Wait()
}

func (p *pool) work(w int) {
	for {
		i := int(p.next.Add(1)) - 1
		if i >= p.count {
			return
		}
		lo := i * p.chunk
		p.j.run(w, lo, min(p.n, lo+p.chunk))
	}
}

// parallel runs j over items [0, n) on up to d.threads goroutines (the
// caller is one) and waits. Items are handed out in chunks of at least
// grain, about four per thread, so tiny ops stay on the caller.
func (d *Device) parallel(n, grain int, j job) {
	t := d.threads
	if grain < 1 {
		grain = 1
	}
	if m := n / grain; m < t {
		t = m
	}
	if t <= 1 {
		if n > 0 {
			j.run(0, 0, n)
		}
		return
	}
	p := d.pool
	chunks := min(n/grain, 4*t)
	p.j, p.n = j, n
	p.chunk = (n + chunks - 1) / chunks
	p.count = (n + p.chunk - 1) / p.chunk
	p.next.Store(0)
	p.wg.Add(t - 1)
	for w := 1; w < t; w++ {
		p.wake[w] <- w
	}
	p.work(0)
	p.wg.Wait()
	p.j = nil
}
