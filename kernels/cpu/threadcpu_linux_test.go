package cpu

import (
	"syscall"
	"time"
)

// threadCPU is the calling OS thread's CPU time (0 where the OS cannot
// say); lock the goroutine to its thread around a measurement.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
