package cpu

import "sync"

// job is one op's parallel body: run does items [lo, hi) on worker w
// (0 is the calling goroutine). Jobs are fields of the Device, passed by
// pointer, so dispatching one allocates nothing.
type job interface {
	run(w, lo, hi int)
}

type task struct {
	j         job
	w, lo, hi int
}

// pool is a fixed set of worker goroutines owned by a Device: started by
// newPool, stopped by close.
type pool struct {
	size  int
	tasks []chan task
	wg    sync.WaitGroup // in-flight tasks of the current op
	quit  sync.WaitGroup // live workers
}

func newPool(size int) *pool {
	p := &pool{size: size, tasks: make([]chan task, size)}
	for w := 1; w < size; w++ {
		ch := make(chan task, 1)
		p.tasks[w] = ch
		p.quit.Add(1)
		go func() {
			defer p.quit.Done()
			for t := range ch {
				t.j.run(t.w, t.lo, t.hi)
				p.wg.Done()
			}
		}()
	}
	return p
}

func (p *pool) close() {
	for w := 1; w < p.size; w++ {
		close(p.tasks[w])
	}
	p.quit.Wait()
}

// parallel splits [0, n) into up to threads contiguous chunks, runs them on
// the workers and the caller, and waits. Chunks smaller than grain items are
// merged so tiny ops stay on one goroutine.
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
	p.wg.Add(t - 1)
	for w := 1; w < t; w++ {
		p.tasks[w] <- task{j: j, w: w, lo: n * w / t, hi: n * (w + 1) / t}
	}
	j.run(0, 0, n/t)
	p.wg.Wait()
}
