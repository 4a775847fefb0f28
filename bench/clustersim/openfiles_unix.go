//go:build unix

package clustersim

import (
	"fmt"
	"syscall"
)

// openFilesFor is how many descriptors the simulation of n agents holds
// at most, with room: a long-poll connection per agent, each simulated
// host's idle pool (transportFor), and the servers' other connections.
// The servers, started by this process, inherit its limit, and the
// leader holds a connection per agent that long-polls it.
func openFilesFor(n int) uint64 {
	hosts := (n + agentsPerHost - 1) / agentsPerHost
	return uint64(2*n + hosts*agentsPerHost/2 + 4096)
}

// raiseOpenFiles lifts this process's open-files limit to want where it
// can: the soft limit up to the hard one as anyone may, and the hard one
// too when the process may (root), within the kernel's fs.nr_open. At
// 10,000 agents the default 20,000 here ran out ("too many open files",
// 4,000 failed heartbeats a run). It returns the limit in force, and an
// error when that is still below want.
func raiseOpenFiles(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("read the open-files limit: %w", err)
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	next := lim
	next.Cur = want
	if next.Max < want {
		next.Max = want
	}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next) == nil {
		return want, nil
	}
	// Not allowed past the hard limit: take what is allowed.
	next = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err != nil {
		return lim.Cur, fmt.Errorf("open-files limit %d, want %d: %w", lim.Cur, want, err)
	}
	return lim.Max, fmt.Errorf("open-files limit %d (the hard limit; raising it needs root), want %d", lim.Max, want)
}
