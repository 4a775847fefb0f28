package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/ark-sched/ark/storage"
)

// ErrClosed: the AsyncWriter was closed.
var ErrClosed = errors.New("checkpoint writer closed")

// AsyncOptions tunes an AsyncWriter.
type AsyncOptions struct {
	Save SaveOptions
	// Keep, if > 0, retains the job's newest Keep complete checkpoints
	// after each successful save (see Retain).
	Keep int
	// OnDone, if set, is called from the upload goroutine with each
	// checkpoint's result, in order, before the next upload may start. It
	// must not call Save (which would wait for it).
	OnDone func(Result)
	// Reserve, if > 0, allocates and touches this many bytes of host
	// staging memory up front (the checkpoint's size), so the first
	// checkpoint does not pay the page faults of fresh memory in the
	// trainer's pause.
	Reserve int64
}

// Result is the outcome of one background save.
type Result struct {
	Ref      Ref
	Manifest *Manifest // nil on failure
	Err      error
	Bytes    int64
	// Stall is what Save cost the trainer: waiting for the previous
	// checkpoint (back-pressure) plus the copy to host memory.
	Stall     time.Duration
	Copy      time.Duration
	Upload    time.Duration
	Retention error // from Retain, if Keep is set
}

// Pending is a checkpoint being uploaded.
type Pending struct {
	done chan struct{}
	res  Result
}

// Done is closed when the upload has finished.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Wait waits for the upload to finish and returns its result.
func (p *Pending) Wait(ctx context.Context) (Result, error) {
	select {
	case <-p.done:
		return p.res, p.res.Err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// AsyncWriter saves the checkpoints of one job in the background. Save
// copies the checkpoint to host memory (the only pause the trainer sees)
// and returns while the copy streams to the store. At most one checkpoint
// is in flight: a Save while the previous one is still uploading waits for
// it (back-pressure when the store is slower than the checkpoint
// interval). The host staging memory is reused from one checkpoint to the
// next. Close waits for the last upload; Abort cancels it.
type AsyncWriter struct {
	store storage.Store
	opts  AsyncOptions

	slot    chan struct{} // holds a token while a checkpoint is in flight
	staging []byte        // guarded by slot

	ctx    context.Context // cancelled by Abort
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	last   *Pending
}

// NewAsyncWriter returns a writer to s.
func NewAsyncWriter(s storage.Store, opts AsyncOptions) *AsyncWriter {
	opts.Save = opts.Save.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	w := &AsyncWriter{store: s, opts: opts, slot: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
	if opts.Reserve > 0 {
		w.staging = make([]byte, opts.Reserve)
		for i := 0; i < len(w.staging); i += 4096 {
			w.staging[i] = 0 // a write faults the page in
		}
	}
	return w
}

// Save waits while a checkpoint is in flight (or until ctx is done), then
// copies st's tensor data to host memory and starts uploading it. Once
// Save returns, the caller may reuse st's buffers. The checkpoint becomes
// visible to readers only when its upload completes successfully.
func (w *AsyncWriter) Save(ctx context.Context, st *State) (*Pending, error) {
	start := time.Now()
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if _, err := plan(st, w.opts.Save); err != nil {
		return nil, err
	}
	select {
	case w.slot <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("checkpoint %s: waiting for the previous checkpoint: %w", st.Ref(), ctx.Err())
	case <-w.ctx.Done():
		return nil, ErrClosed
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.slot
		return nil, ErrClosed
	}
	copyStart := time.Now()
	staged := w.stage(st)
	p := &Pending{done: make(chan struct{})}
	p.res = Result{Ref: st.Ref(), Bytes: st.Bytes(), Copy: time.Since(copyStart), Stall: time.Since(start)}
	w.last = p
	w.wg.Add(1)
	w.mu.Unlock()
	go w.upload(staged, p)
	return p, nil
}

func (w *AsyncWriter) upload(st *State, p *Pending) {
	defer w.wg.Done()
	start := time.Now()
	m, err := Save(w.ctx, w.store, st, w.opts.Save)
	p.res.Upload = time.Since(start)
	p.res.Manifest, p.res.Err = m, err
	if err == nil && w.opts.Keep > 0 {
		_, p.res.Retention = Retain(w.ctx, w.store, st.Job, w.opts.Keep)
	}
	close(p.done) // before the slot goes: a Save that gets it sees p done
	if w.opts.OnDone != nil {
		w.opts.OnDone(p.res) // in order, one at a time
	}
	<-w.slot // the staging memory is free again
}

// stage copies st into the staging memory and returns a State over it.
// The caller holds the slot, so no upload is reading the staging memory.
func (w *AsyncWriter) stage(st *State) *State {
	total := st.Bytes()
	if int64(cap(w.staging)) < total {
		w.staging = make([]byte, total)
	}
	buf := w.staging[:total]
	out := *st
	out.Metadata = maps.Clone(st.Metadata)
	out.Shards = make([]Shard, len(st.Shards))
	var jobs []copyJob
	var off int64
	for i, sh := range st.Shards {
		out.Shards[i] = Shard{Name: sh.Name, Rank: sh.Rank, Tensors: make([]Tensor, len(sh.Tensors))}
		for j, t := range sh.Tensors {
			dst := buf[off : off+int64(len(t.Data)) : off+int64(len(t.Data))]
			jobs = append(jobs, copyJob{dst, t.Data})
			out.Shards[i].Tensors[j] = Tensor{Name: t.Name, DType: t.DType, Shape: slices.Clone(t.Shape), Data: dst}
			off += int64(len(t.Data))
		}
	}
	parallelCopy(jobs)
	return &out
}

type copyJob struct{ dst, src []byte }

// parallelCopy copies in pieces spread over the CPUs: one core cannot
// saturate memory bandwidth.
func parallelCopy(jobs []copyJob) {
	const piece = 4 << 20
	var pieces []copyJob
	for _, j := range jobs {
		for o := 0; o < len(j.src); o += piece {
			e := min(o+piece, len(j.src))
			pieces = append(pieces, copyJob{j.dst[o:e], j.src[o:e]})
		}
	}
	workers := min(runtime.GOMAXPROCS(0), 8, len(pieces))
	if workers <= 1 {
		for _, p := range pieces {
			copy(p.dst, p.src)
		}
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(pieces); i += workers {
				copy(pieces[i].dst, pieces[i].src)
			}
		})
	}
	wg.Wait()
}

// Flush waits for the checkpoint in flight, if any, and returns its error.
func (w *AsyncWriter) Flush(ctx context.Context) error {
	w.mu.Lock()
	p := w.last
	w.mu.Unlock()
	if p == nil {
		return nil
	}
	_, err := p.Wait(ctx)
	return err
}

// Close waits for the checkpoint in flight and returns its error. Later
// Saves fail with ErrClosed. Close is idempotent.
func (w *AsyncWriter) Close() error {
	w.mu.Lock()
	w.closed = true
	p := w.last
	w.mu.Unlock()
	w.wg.Wait()
	w.cancel()
	if p != nil {
		return p.res.Err
	}
	return nil
}

// Abort cancels the checkpoint in flight (which is then absent: its
// manifest is never written) and closes the writer.
func (w *AsyncWriter) Abort() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.cancel()
	w.wg.Wait()
}
