package clustersim

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Percentile is the nearest-rank p-th percentile (0 < p <= 1) of v, which
// it sorts; 0 for no values.
func Percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	i := int(float64(len(v))*p+0.999999) - 1 // ceil(n·p) as a rank, 1-based
	return v[min(max(i, 0), len(v)-1)]
}

// procStat is what /proc says of one process at one moment.
type procStat struct {
	cpu time.Duration // user + system time so far
	rss int64         // resident bytes
}

// clockTick is USER_HZ, 100 on every Linux Go runs on.
const clockTick = 100

// readProc reads a process's CPU time and resident memory from /proc.
func readProc(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(string(b), os.Getpagesize())
}

// parseProcStat reads utime, stime (fields 14, 15) and rss (24, in pages)
// from a /proc/PID/stat line; the command name (field 2) may hold spaces
// and parentheses, so fields are counted after its last ')'.
func parseProcStat(line string, pageSize int) (procStat, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc stat line has no command name: %q", line)
	}
	f := strings.Fields(line[i+1:]) // f[0] is field 3 (state)
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("/proc stat line has %d fields after the name, want >= 22", len(f))
	}
	num := func(k int) (int64, error) {
		n, err := strconv.ParseInt(f[k-3], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat field %d: %w", k, err)
		}
		return n, nil
	}
	ut, err := num(14)
	if err != nil {
		return procStat{}, err
	}
	st, err := num(15)
	if err != nil {
		return procStat{}, err
	}
	rss, err := num(24)
	if err != nil {
		return procStat{}, err
	}
	return procStat{cpu: time.Duration(ut+st) * time.Second / clockTick, rss: rss * int64(pageSize)}, nil
}
