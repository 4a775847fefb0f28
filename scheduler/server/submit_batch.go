package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ark-sched/ark/scheduler/state"
)

// Group commit of job submissions on the leader. Raft already writes the
// entries that wait together with one fsync (cluster: BatchApplyCh); what
// each entry still costs on every server is its own log record, FSM
// apply, state transaction and index update, and under a burst of
// submissions those were most of the leader's and all of the followers'
// work. So a submission that arrives while registerMaxInFlight entries are
// committing waits, and the next entry carries every submission that
// waited, as one RegisterJobsBinary command (a lone submission is a batch
// of one). Each is answered only once that entry has committed and applied
// (acknowledged = durable, as before), with what its own RegisterJob entry
// would have answered.
const (
	// registerMaxInFlight is how many registration entries commit at
	// once: past it submissions queue for the next entry. Two keep the
	// pipeline busy (one entry is replicated while the last one
	// applies) and let a burst gather into few entries.
	registerMaxInFlight = 2
	// registerMaxJobs and registerMaxBytes bound one entry: a log entry
	// is sent and fsync'd whole, and a snapshot install waits on it.
	registerMaxJobs  = 512
	registerMaxBytes = 4 << 20
)

// registration is one submission waiting for its entry.
type registration struct {
	item []byte // its request, encoded by the request's goroutine (state.EncodeRegisterJobItem)
	done chan registered
}

type registered struct {
	resp  *state.RegisterJobResponse
	index uint64
	err   error
}

// registerBatcher queues registrations and commits them in entries. It
// owns no long-lived goroutine: the submission that finds a free slot
// commits in its own goroutine, and an entry that ends with submissions
// waiting starts one goroutine for the next entry, which lives for that
// one commit (bounded by the Raft apply timeout).
type registerBatcher struct {
	apply func(ctx context.Context, data []byte) (any, uint64, error)

	mu       sync.Mutex
	queue    []*registration
	inFlight int
}

// register commits one job's registration item, alone or with others, and
// returns its response and the index of the entry that carried it.
func (b *registerBatcher) register(item []byte) (*state.RegisterJobResponse, uint64, error) {
	r := &registration{item: item, done: make(chan registered, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, r)
	var batch []*registration
	if b.inFlight < registerMaxInFlight {
		batch = b.takeLocked()
	}
	b.mu.Unlock()
	if batch != nil {
		b.run(batch)
	}
	// Not bound to the request's context: once queued, the entry may
	// commit, and the answer says whether it did (as a lone Raft apply).
	res := <-r.done
	return res.resp, res.index, res.err
}

// takeLocked takes the queue's head for the next entry and counts it in
// flight.
func (b *registerBatcher) takeLocked() []*registration {
	n, size := 0, 0
	for n < len(b.queue) && n < registerMaxJobs {
		if n > 0 && size+len(b.queue[n].item) > registerMaxBytes {
			break
		}
		size += len(b.queue[n].item)
		n++
	}
	batch := b.queue[:n:n]
	b.queue = append([]*registration(nil), b.queue[n:]...)
	b.inFlight++
	return batch
}

// run commits a batch, then hands the slot to whatever queued meanwhile.
func (b *registerBatcher) run(batch []*registration) {
	b.commit(batch)
	b.mu.Lock()
	b.inFlight--
	var next []*registration
	if len(b.queue) > 0 {
		next = b.takeLocked()
	}
	b.mu.Unlock()
	if next != nil {
		go b.run(next)
	}
}

// commit applies one entry and answers each of its registrations.
func (b *registerBatcher) commit(batch []*registration) {
	answer := func(i int, r registered) { batch[i].done <- r }
	// The timeout a lone cluster.Apply without a deadline has.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	items := make([][]byte, len(batch))
	for i, r := range batch {
		items[i] = r.item
	}
	data, err := state.EncodeRegisterJobsBinary(items)
	var resp any
	var idx uint64
	if err == nil {
		resp, idx, err = b.apply(ctx, data)
	}
	all, _ := resp.(*state.RegisterJobsResponse)
	if err == nil && (all == nil || len(all.Results) != len(batch)) {
		err = fmt.Errorf("register jobs: unexpected response %T", resp)
	}
	for i := range batch {
		if err != nil {
			answer(i, registered{index: idx, err: err})
			continue
		}
		res := all.Results[i]
		answer(i, registered{res.Response, idx, res.Err})
	}
}
