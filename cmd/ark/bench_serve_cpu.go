package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ark-sched/ark/worker/serve"
)

// On the shared machines these benchmarks run on, a row's tokens/s moves
// with whatever else runs (one binary's 1+N ratio read 0.58x and 1.77x in
// two runs a minute apart); the CPU time the server spends per output
// token moves far less, so ark bench serve reports it beside the rates.

// procThreadsCPU is the CPU time all threads of process pid have run, in
// nanoseconds from /proc/PID/task/*/schedstat (the first field; /proc/PID/
// stat's ticks of 10 ms are too coarse for a row of a tenth of a second),
// or false where it cannot be read (not Linux).
func procThreadsCPU(pid int) (time.Duration, bool) {
	tasks, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/schedstat")
	if err != nil || len(tasks) == 0 {
		return 0, false
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread ended between the listing and the read
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, false
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, false
		}
		sum += time.Duration(ns)
	}
	return sum, true
}

// selfCPU is the user and system CPU time this process (the load
// generator, while a row runs) has used, 0 where getrusage cannot say.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// decodeCounts reads the server's decode steps and the tokens they made
// (GET /v1/health): their ratio over a row is its mean batch.
func decodeCounts(url string) (steps, tokens uint64, ph serve.Phases, ok bool) {
	resp, err := http.Get(url + "/v1/health")
	if err != nil {
		return 0, 0, ph, false
	}
	defer resp.Body.Close()
	var h serve.Health
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&h) != nil {
		return 0, 0, ph, false
	}
	return h.DecodeSteps, h.DecodeTokens, h.Phases, true
}

// rowPhases is where a row's time went, from the server's phases before
// and after it (serve.Phases): the scheduler loop's shares of its wall
// time and a request's mean milliseconds in each of its phases.
type rowPhases struct {
	LoopIdlePct    float64 `json:"loop_idle_pct"`
	LoopPrefillPct float64 `json:"loop_prefill_pct"`
	LoopStepPct    float64 `json:"loop_step_pct"`
	PromptsPerCall float64 `json:"prompts_per_prefill"`
	HandlerMs      float64 `json:"request_handler_ms"`
	QueueMs        float64 `json:"request_queue_ms"`
	PrefillMs      float64 `json:"request_prefill_ms"`
	DecodeMs       float64 `json:"request_decode_ms"`
	EndMs          float64 `json:"request_end_ms"`
	WriteMs        float64 `json:"request_write_ms"`
}

// phasesOf differences two reads of the server's phases; false when the
// row served no streamed request.
func phasesOf(a, b serve.Phases) (rowPhases, bool) {
	loop := (b.IdleMs - a.IdleMs) + (b.PrefillMs - a.PrefillMs) + (b.StepMs - a.StepMs)
	n, ns := float64(b.Requests-a.Requests), float64(b.Streams-a.Streams)
	if loop <= 0 || n <= 0 || ns <= 0 {
		return rowPhases{}, false
	}
	return rowPhases{
		LoopIdlePct: 100 * (b.IdleMs - a.IdleMs) / loop, LoopPrefillPct: 100 * (b.PrefillMs - a.PrefillMs) / loop,
		LoopStepPct: 100 * (b.StepMs - a.StepMs) / loop, PromptsPerCall: float64(b.Prefills-a.Prefills) / max(float64(b.PrefillCalls-a.PrefillCalls), 1),
		HandlerMs: (b.HandlerMs - a.HandlerMs) / ns, QueueMs: (b.QueueMs - a.QueueMs) / n, PrefillMs: (b.ReqPrefillMs - a.ReqPrefillMs) / n,
		DecodeMs: (b.DecodeMs - a.DecodeMs) / n, EndMs: (b.EndMs - a.EndMs) / ns, WriteMs: (b.WriteMs - a.WriteMs) / ns,
	}, true
}

// String is the row's progress line.
func (p rowPhases) String() string {
	return fmt.Sprintf("loop: idle %.0f%%, prefill %.0f%% (%.1f prompts a call), steps %.0f%%; a request: handler %.2f, queue %.2f, prefill %.2f, decode %.2f, end %.2f, write %.2f ms",
		p.LoopIdlePct, p.LoopPrefillPct, p.PromptsPerCall, p.LoopStepPct, p.HandlerMs, p.QueueMs, p.PrefillMs, p.DecodeMs, p.EndMs, p.WriteMs)
}

// medianPhases is the field-by-field median of rounds' phases.
func medianPhases(ps []rowPhases) *rowPhases {
	if len(ps) == 0 {
		return nil
	}
	pick := func(f func(rowPhases) float64) float64 {
		xs := make([]float64, len(ps))
		for i, p := range ps {
			xs[i] = f(p)
		}
		return median(xs)
	}
	return &rowPhases{
		LoopIdlePct:    pick(func(p rowPhases) float64 { return p.LoopIdlePct }),
		LoopPrefillPct: pick(func(p rowPhases) float64 { return p.LoopPrefillPct }),
		LoopStepPct:    pick(func(p rowPhases) float64 { return p.LoopStepPct }),
		PromptsPerCall: pick(func(p rowPhases) float64 { return p.PromptsPerCall }),
		HandlerMs:      pick(func(p rowPhases) float64 { return p.HandlerMs }),
		QueueMs:        pick(func(p rowPhases) float64 { return p.QueueMs }),
		PrefillMs:      pick(func(p rowPhases) float64 { return p.PrefillMs }),
		DecodeMs:       pick(func(p rowPhases) float64 { return p.DecodeMs }),
		EndMs:          pick(func(p rowPhases) float64 { return p.EndMs }),
		WriteMs:        pick(func(p rowPhases) float64 { return p.WriteMs }),
	}
}
