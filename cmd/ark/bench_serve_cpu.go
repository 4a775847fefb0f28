package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
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
