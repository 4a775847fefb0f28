package serve

import (
	"sync/atomic"
	"time"
)

// Phases say where the engine's loop and its requests spend their time:
// cumulative totals since the start, in milliseconds, which an operator
// (or ark bench serve, over a row) differences between two reads of
// /v1/health. A mean decode batch below the requests in flight is time
// those requests spend outside the decode steps, and these figures say in
// which phase.
type Phases struct {
	// The scheduler loop: IdleMs waiting for work with an empty batch,
	// PrefillMs in prefills (admission and first tokens), StepMs in
	// decode steps (sampling and the events' sends included). Their sum
	// is the loop's wall time, less its bookkeeping.
	IdleMs    float64 `json:"idleMs"`
	PrefillMs float64 `json:"prefillMs"`
	StepMs    float64 `json:"stepMs"`
	// Prefills are the requests prefilled, PrefillCalls the batched
	// prefills that did them (Prefills/PrefillCalls: prompts a prefill
	// carried); BatchRowMs is the decode steps' rows times their
	// durations, so BatchRowMs/StepMs is the batch the steps' time
	// carried (the mean batch weights every step alike, and a step of
	// few rows is short).
	Prefills     uint64  `json:"prefills"`
	PrefillCalls uint64  `json:"prefillCalls"`
	BatchRowMs   float64 `json:"batchRowMs"`
	// A finished request's life, summed over Requests: HandlerMs from the
	// handler's start to its submit (reading and tokenizing the body),
	// QueueMs from the submit to its prefill's start, PrefillMs... to its
	// first token (ReqPrefillMs), DecodeMs from its first token to its
	// last, EndMs from its last token to the stream's goroutine taking its
	// last event, WriteMs from there to the stream's end written. Streamed
	// OpenAI requests only (the bench's), except that the engine's three
	// count every request.
	Requests     uint64  `json:"requests"`
	HandlerMs    float64 `json:"handlerMs"`
	QueueMs      float64 `json:"queueMs"`
	ReqPrefillMs float64 `json:"reqPrefillMs"`
	DecodeMs     float64 `json:"decodeMs"`
	Streams      uint64  `json:"streams"`
	EndMs        float64 `json:"endMs"`
	WriteMs      float64 `json:"writeMs"`
}

// phaseClock accumulates Phases with atomic adds of nanoseconds.
type phaseClock struct {
	idle, prefill, step, batchRow     atomic.Int64
	prefills, prefillCalls            atomic.Uint64
	requests                          atomic.Uint64
	handler, queue, reqPrefill, decod atomic.Int64
	streams                           atomic.Uint64
	end, write                        atomic.Int64
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

func (c *phaseClock) snapshot() Phases {
	return Phases{
		IdleMs: ms(c.idle.Load()), PrefillMs: ms(c.prefill.Load()), StepMs: ms(c.step.Load()),
		Prefills: c.prefills.Load(), PrefillCalls: c.prefillCalls.Load(), BatchRowMs: ms(c.batchRow.Load()),
		Requests: c.requests.Load(), QueueMs: ms(c.queue.Load()), ReqPrefillMs: ms(c.reqPrefill.Load()), DecodeMs: ms(c.decod.Load()),
		Streams: c.streams.Load(), HandlerMs: ms(c.handler.Load()), EndMs: ms(c.end.Load()), WriteMs: ms(c.write.Load()),
	}
}

// finished adds a request's engine phases, at its last event.
func (c *phaseClock) finished(p *pending, now time.Time) {
	if p.admitted.IsZero() || p.first.IsZero() {
		return // never prefilled: cancelled or failed while queued
	}
	c.requests.Add(1)
	c.queue.Add(int64(p.admitted.Sub(p.since)))
	c.reqPrefill.Add(int64(p.first.Sub(p.admitted)))
	c.decod.Add(int64(now.Sub(p.first)))
}

// streamed adds a stream's phases outside the engine: start is the
// handler's start, submitted when the engine took the request, last when
// the engine sent the last event, taken when the stream's goroutine read
// it and written when the stream's end was written.
func (c *phaseClock) streamed(start, submitted, last, taken, written time.Time) {
	if last.IsZero() {
		return
	}
	c.streams.Add(1)
	c.handler.Add(int64(submitted.Sub(start)))
	c.end.Add(int64(taken.Sub(last)))
	c.write.Add(int64(written.Sub(taken)))
}
