package serve

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ark-sched/ark/worker/train"
)

// Errors of Submit and of a request's end; match with errors.Is.
var (
	// ErrQueueFull: the engine already holds MaxQueue waiting requests.
	ErrQueueFull = errors.New("serve: request queue full")
	// ErrClosed: the engine stopped.
	ErrClosed = errors.New("serve: engine stopped")
)

// Finish reasons, as OpenAI names them.
const (
	FinishStop   = "stop"   // a stop string was generated
	FinishLength = "length" // max tokens reached
)

// EngineConfig bounds the engine.
type EngineConfig struct {
	MaxBatch int // sequences decoded together in one step
	MaxQueue int // requests waiting for a slot; past it Submit fails with ErrQueueFull
}

// Request is one generation: the prompt as tokens and how to continue it.
type Request struct {
	// Adapter is the LoRA adapter to decode with, by name; "" for the base.
	Adapter     string
	Prompt      []int32
	MaxTokens   int
	Temperature float64
	Seed        uint64
	Stop        []string // generation ends before the first of these; it is not returned
}

// Event is what a request's stream carries: text as it is decided, then one
// last event with Done set and either Finish or Err.
type Event struct {
	Text   string
	Tokens int // completion tokens so far
	Done   bool
	Finish string
	Err    error
	// Blocked, on a last event an output rule ended, is the rule's
	// answer: what the client gets instead of the rest.
	Blocked string
	// at, on a last event, is when the engine sent it (Phases).
	at time.Time
}

// Stats are the engine's counters.
type Stats struct {
	Queued, Running                                  int
	Admitted, Completed, Cancelled, Failed, Rejected uint64
	Steps, Tokens                                    uint64
	StepTokens                                       uint64 // tokens of decode steps: Tokens less the prefills' first tokens
	MaxBatchSeen                                     int
	// TTFTP90Ms is the 90th percentile of the time to the first token of
	// the last requests (0 before any).
	TTFTP90Ms float64
}

// Engine batches generation continuously (iteration-level): one scheduler
// goroutine (Run) owns the decoder and its device, which are not safe for
// concurrent callers. Requests wait in a bounded FIFO queue, are prefilled
// when a slot in the batch is free, then decode one token per step with
// every other running request, and leave the batch the step they finish:
// max tokens, a stop string, or their context done (client gone or
// deadline), which frees the slot at the next step boundary. FIFO admission
// and one token per running request per step mean none starves.
type Engine struct {
	dec *train.Decoder
	tok train.Tokenizer // the model's: bytes, or an imported checkpoint's BPE
	cfg EngineConfig

	// Adapters (see useAdapters): the registry of served adapters and the
	// decoder's compute slots, which only the scheduler goroutine touches.
	reg      *registry
	slots    []*adapter // slot -> the adapter in it, nil when free
	slotUsed []uint64   // LRU clock of each slot
	clock    uint64

	mu      sync.Mutex
	queue   []*pending
	closed  bool
	wake    chan struct{} // cap 1: the queue grew
	running atomic.Int64

	ttft   ttftWindow    // recent times to the first token (engine_ttft.go)
	phases phaseClock    // where the loop and the requests spend time (engine_phases.go)
	fig    engineFigures // histograms and counts for the agent (engine_metrics.go)

	admitted, completed, cancelled, failed, rejected atomic.Uint64
	steps, tokens, stepTokens                        atomic.Uint64
	maxBatch                                         atomic.Int64
}

// pending is a request in the engine: queued, then running.
type pending struct {
	ctx      context.Context
	req      Request
	since    time.Time  // when it was submitted
	admitted time.Time  // when its prefill started
	first    time.Time  // when its first token came
	events   chan Event // buffered for every event it can get: the scheduler never blocks on a client

	ad      *adapter // nil: the base
	slotted bool     // holds a reference on ad's compute slot

	seq     *train.Seq
	sampler *train.Sampler
	last    int32  // token to feed at the next step
	text    []byte // completion so far
	sent    int    // bytes of text already sent
	ntok    int    // completion tokens (text may be shorter: a stop string is cut)
	holdMax int    // bytes that may be the start of a stop string
}

// NewEngine returns an engine over dec; call Run to start it.
func NewEngine(dec *train.Decoder, cfg EngineConfig) *Engine {
	cfg.MaxBatch = max(1, cfg.MaxBatch)
	cfg.MaxQueue = max(1, cfg.MaxQueue)
	return &Engine{dec: dec, tok: dec.Tokenizer(), cfg: cfg, wake: make(chan struct{}, 1), fig: newEngineFigures()}
}

// poke wakes the scheduler (an adapter fetch ended).
func (e *Engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Config is the decoded model's shape.
func (e *Engine) Config() train.Config { return e.dec.Config() }

// Submit queues req; its events arrive on the returned channel until one
// has Done set. ctx ends the request (client gone, deadline) wherever it is.
func (e *Engine) Submit(ctx context.Context, req Request) (<-chan Event, error) {
	if len(req.Prompt) == 0 || req.MaxTokens < 1 {
		return nil, fmt.Errorf("serve: empty prompt or max tokens %d", req.MaxTokens)
	}
	events := make(chan Event, req.MaxTokens+1)
	p := &pending{ctx: ctx, req: req, events: events, since: time.Now()}
	if req.Adapter != "" {
		var ok bool
		if e.reg != nil {
			p.ad, ok = e.reg.lookup(req.Adapter)
		}
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownAdapter, req.Adapter)
		}
	}
	for _, s := range req.Stop {
		p.holdMax = max(p.holdMax, len(s)-1)
	}
	e.mu.Lock()
	switch {
	case e.closed:
		e.mu.Unlock()
		return nil, ErrClosed
	case len(e.queue) >= e.cfg.MaxQueue:
		e.mu.Unlock()
		e.rejected.Add(1)
		return nil, ErrQueueFull
	}
	e.queue = append(e.queue, p)
	e.mu.Unlock()
	e.fig.byAdapter.add(req.Adapter)
	// A request whose client leaves or whose deadline passes while it
	// waits leaves the queue at once; a running one leaves at the next
	// step (drop).
	context.AfterFunc(ctx, func() { e.dequeue(p) })
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return events, nil
}

// dequeue ends p if it is still queued; the scheduler has not seen it, so
// this goroutine may finish it.
func (e *Engine) dequeue(p *pending) {
	e.mu.Lock()
	i := slices.Index(e.queue, p)
	if i >= 0 {
		e.queue = slices.Delete(e.queue, i, i+1)
	}
	e.mu.Unlock()
	if i >= 0 {
		e.finish(p, "", p.ctx.Err())
	}
}

// Stats returns the counters now.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	q := len(e.queue)
	e.mu.Unlock()
	return Stats{
		Queued: q, Running: int(e.running.Load()),
		Admitted: e.admitted.Load(), Completed: e.completed.Load(), Cancelled: e.cancelled.Load(),
		Failed: e.failed.Load(), Rejected: e.rejected.Load(),
		Steps: e.steps.Load(), Tokens: e.tokens.Load(), StepTokens: e.stepTokens.Load(), MaxBatchSeen: int(e.maxBatch.Load()),
		TTFTP90Ms: e.ttft.p90Ms(),
	}
}

// Run is the scheduler loop; it returns when ctx ends, after failing every
// request still queued or running with ErrClosed.
func (e *Engine) Run(ctx context.Context) error {
	var batch []*pending
	defer func() {
		e.mu.Lock()
		e.closed = true
		rest := e.queue
		e.queue = nil
		e.mu.Unlock()
		for _, p := range append(batch, rest...) {
			e.finish(p, "", ErrClosed)
		}
	}()
	// retry: the batch just emptied, freeing adapter slots that requests
	// still queued may have been waiting for: admit once more before
	// waiting for news.
	retry := false
	for {
		if len(batch) == 0 && !retry { // idle: wait for work
			t0 := time.Now()
			select {
			case <-ctx.Done():
				return nil
			case <-e.wake:
			}
			e.phases.idle.Add(int64(time.Since(t0)))
		} else if ctx.Err() != nil {
			return nil
		}
		retry = false
		batch = e.admit(batch)
		batch = e.drop(batch)
		if len(batch) == 0 {
			continue
		}
		t0 := time.Now()
		err := e.step(batch)
		dt := time.Since(t0)
		e.phases.step.Add(int64(dt))
		e.phases.batchRow.Add(int64(dt) * int64(len(batch)))
		if err != nil {
			for _, p := range batch {
				e.finish(p, "", err)
			}
			batch = batch[:0]
		}
		batch = e.drop(batch)
		retry = len(batch) == 0
	}
}

// admit moves queued requests into free batch places, oldest first, and
// prefills them together (their prompts share each weight read, as a
// step's rows do), emitting each one's first token. A request whose
// adapter is not ready (being fetched, or every compute slot busy with
// running requests of other adapters) keeps its place in the queue while
// requests behind it are admitted: one adapter's load never holds up
// another's requests.
func (e *Engine) admit(batch []*pending) []*pending {
	var fresh []*pending
	e.mu.Lock()
	for i := 0; i < len(e.queue) && len(batch)+len(fresh) < e.cfg.MaxBatch; {
		p := e.queue[i]
		if p.ctx.Err() == nil {
			ready, err := e.acquire(p)
			if !ready && err == nil {
				i++ // waits for its adapter
				continue
			}
			if err != nil {
				e.queue = slices.Delete(e.queue, i, i+1)
				e.mu.Unlock()
				e.finish(p, "", err)
				e.mu.Lock()
				continue
			}
		}
		e.queue = slices.Delete(e.queue, i, i+1)
		e.mu.Unlock()
		if p.ctx.Err() != nil { // gave up while queued
			e.finish(p, "", p.ctx.Err())
			e.mu.Lock()
			continue
		}
		e.admitted.Add(1)
		seq, err := e.dec.NewSeq()
		if err != nil {
			e.finish(p, "", err)
			e.mu.Lock()
			continue
		}
		p.seq = seq
		e.running.Add(1)
		if p.ad != nil {
			seq.Slot = p.ad.slot
		}
		fresh = append(fresh, p)
		e.mu.Lock()
	}
	e.mu.Unlock()
	if len(fresh) == 0 {
		return batch
	}
	t0 := time.Now()
	defer func() { e.phases.prefill.Add(int64(time.Since(t0))) }()
	e.phases.prefills.Add(uint64(len(fresh)))
	e.phases.prefillCalls.Add(1)
	seqs, prompts := make([]*train.Seq, len(fresh)), make([][]int32, len(fresh))
	for i, p := range fresh {
		seqs[i], prompts[i] = p.seq, p.req.Prompt
		p.admitted = t0
	}
	logits, err := e.dec.PrefillBatch(seqs, prompts)
	if err != nil {
		for _, p := range fresh {
			e.finish(p, "", err)
		}
		return batch
	}
	V := e.dec.Config().Vocab
	for i, p := range fresh {
		p.sampler = train.NewSampler(p.req.Temperature, p.req.Seed)
		e.emit(p, p.sampler.Next(logits[i*V:(i+1)*V]))
		batch = append(batch, p)
	}
	return batch
}

// drop removes finished requests and those whose context ended.
func (e *Engine) drop(batch []*pending) []*pending {
	out := batch[:0]
	for _, p := range batch {
		switch {
		case p.events == nil: // finished by emit
		case p.ctx.Err() != nil:
			e.finish(p, "", p.ctx.Err())
		default:
			out = append(out, p)
			continue
		}
	}
	clear(batch[len(out):])
	return out
}

// step decodes one token for every request in the batch.
func (e *Engine) step(batch []*pending) error {
	rows, toks := make([]*train.Seq, len(batch)), make([]int32, len(batch))
	for i, p := range batch {
		rows[i], toks[i] = p.seq, p.last
	}
	logits, err := e.dec.Step(rows, toks)
	if err != nil {
		return err
	}
	e.steps.Add(1)
	e.stepTokens.Add(uint64(len(batch)))
	if int64(len(batch)) > e.maxBatch.Load() {
		e.maxBatch.Store(int64(len(batch)))
	}
	V := e.dec.Config().Vocab
	for i, p := range batch {
		e.emit(p, p.sampler.Next(logits[i*V:(i+1)*V]))
	}
	return nil
}

// emit appends tok to p's completion, sends what can no longer be part of
// a stop string (nor half of a UTF-8 character), and finishes p when it
// is done.
func (e *Engine) emit(p *pending, tok int32) {
	e.tokens.Add(1)
	p.last = tok
	piece, err := e.tok.Decode([]int32{tok})
	if err != nil {
		// A model whose vocabulary is wider than its tokenizer's (padded
		// rows) sampled a row no text stands for.
		e.finish(p, FinishStop, fmt.Errorf("model produced %w", err))
		return
	}
	before := len(p.text)
	p.text = append(p.text, piece...) // a token is one or more bytes
	p.ntok++
	tokens := p.ntok
	if tokens == 1 {
		p.first = time.Now()
		e.ttft.add(p.first.Sub(p.since))
		e.fig.ttft.observe(p.first.Sub(p.since))
	}
	for _, s := range p.req.Stop {
		// Only a match ending in the new token's bytes is new: the text
		// before was checked.
		from := max(0, before-len(s)+1)
		if i := strings.Index(string(p.text[from:]), s); s != "" && i >= 0 {
			p.text = p.text[:from+i]
			e.send(p, len(p.text), tokens)
			e.finish(p, FinishStop, nil)
			return
		}
	}
	if tokens >= p.req.MaxTokens {
		e.send(p, len(p.text), tokens)
		e.finish(p, FinishLength, nil)
		return
	}
	safe := len(p.text) - p.holdMax
	for safe > p.sent && !utf8.FullRune(p.text[lastRuneStart(p.text[:safe]):safe]) {
		safe = lastRuneStart(p.text[:safe])
	}
	e.send(p, safe, tokens)
}

// lastRuneStart is the index where the last (possibly partial) UTF-8
// character of b starts.
func lastRuneStart(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			return i
		}
	}
	return max(0, len(b)-1)
}

func (e *Engine) send(p *pending, upto, tokens int) {
	if upto > p.sent {
		p.events <- Event{Text: string(p.text[p.sent:upto]), Tokens: tokens}
		p.sent = upto
	}
}

// finish sends p's last event and frees its slot's cache.
func (e *Engine) finish(p *pending, reason string, err error) {
	if p.events == nil {
		return
	}
	switch {
	case err == nil:
		e.completed.Add(1)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		e.cancelled.Add(1)
	default:
		e.failed.Add(1)
	}
	e.fig.finished(p)
	now := time.Now()
	e.phases.finished(p, now)
	// Free the request's place before its last event: a client that reads
	// the figures the moment its answer ends sees itself gone.
	if p.seq != nil {
		e.dec.Release(p.seq)
		p.seq = nil
		e.running.Add(-1)
	}
	if p.slotted {
		e.release(p)
	}
	p.events <- Event{Done: true, Finish: reason, Err: err, Tokens: p.ntok, at: now}
	p.events = nil
}

// withDeadline bounds ctx by d; zero means no deadline.
func withDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
