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

// phaseLine describes where a row's time went, from the server's phases
// before (a) and after (b) it: the loop's share in each phase and a
// request's mean time in each of its own.
func phaseLine(a, b serve.Phases) string {
	loop := (b.IdleMs - a.IdleMs) + (b.PrefillMs - a.PrefillMs) + (b.StepMs - a.StepMs)
	n := float64(b.Requests - a.Requests)
	ns := float64(b.Streams - a.Streams)
	if loop <= 0 || n <= 0 || ns <= 0 {
		return "no phases"
	}
	calls := float64(b.PrefillCalls - a.PrefillCalls)
	return fmt.Sprintf("loop %.1f ms: idle %.0f%% prefill %.0f%% (%.1f prompts a call) steps %.0f%% (time-weighted batch %.1f); "+
		"a request: handler %.2f queue %.2f prefill %.2f decode %.2f end %.2f write %.2f ms",
		loop, 100*(b.IdleMs-a.IdleMs)/loop, 100*(b.PrefillMs-a.PrefillMs)/loop, float64(b.Prefills-a.Prefills)/max(calls, 1),
		100*(b.StepMs-a.StepMs)/loop, (b.BatchRowMs-a.BatchRowMs)/max(b.StepMs-a.StepMs, 1e-9),
		(b.HandlerMs-a.HandlerMs)/ns, (b.QueueMs-a.QueueMs)/n, (b.ReqPrefillMs-a.ReqPrefillMs)/n, (b.DecodeMs-a.DecodeMs)/n,
		(b.EndMs-a.EndMs)/ns, (b.WriteMs-a.WriteMs)/ns)
}
