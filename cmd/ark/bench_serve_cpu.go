package main

import (
	"encoding/json"
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
func decodeCounts(url string) (steps, tokens uint64, ok bool) {
	resp, err := http.Get(url + "/v1/health")
	if err != nil {
		return 0, 0, false
	}
	defer resp.Body.Close()
	var h serve.Health
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&h) != nil {
		return 0, 0, false
	}
	return h.DecodeSteps, h.DecodeTokens, true
}
