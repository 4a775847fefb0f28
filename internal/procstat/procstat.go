// Package procstat reads a process's line of /proc/PID/stat (Linux): its
// state, CPU time, start time and resident memory. The agent's driver
// tells a live task from a later process that reused its pid by the start
// time; the benches read the servers' CPU and memory. One parser, because
// the line's second field (the command name, in parentheses) may hold
// spaces and parentheses itself, so fields are counted after its last ')'.
package procstat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of the line's times: 100 on every Linux
// Go runs on.
const clockTick = 100

// Stat is what /proc says of one process at one moment.
type Stat struct {
	State     byte          // field 3: R, S, D, Z (ended, not reaped), ...
	CPU       time.Duration // fields 14 and 15: user + system time so far
	StartTime uint64        // field 22: clock ticks after boot the process started
	RSS       int64         // field 24 (pages), in bytes
}

// Read reads process pid's line.
func Read(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return Parse(string(b), os.Getpagesize())
}

// Parse reads a /proc/PID/stat line; pageSize is the unit of its RSS.
func Parse(line string, pageSize int) (Stat, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("/proc stat line has no command name: %q", line)
	}
	f := strings.Fields(line[i+1:]) // f[0] is field 3 (state)
	if len(f) < 22 {
		return Stat{}, fmt.Errorf("/proc stat line has %d fields after the name, want >= 22", len(f))
	}
	var err error
	num := func(k int) uint64 {
		n, e := strconv.ParseUint(f[k-3], 10, 64)
		if e != nil && err == nil {
			err = fmt.Errorf("/proc stat field %d: %w", k, e)
		}
		return n
	}
	st := Stat{State: f[0][0]}
	cpu := num(14) + num(15)
	st.StartTime = num(22)
	rss := num(24)
	if err != nil {
		return Stat{}, err
	}
	st.CPU = time.Duration(cpu) * time.Second / clockTick
	st.RSS = int64(rss) * int64(pageSize)
	return st, nil
}
