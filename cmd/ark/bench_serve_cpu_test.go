package main

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// procThreadsCPU of this process grows by at least the CPU a loop burns,
// and says false for a process that does not exist.
func TestProcThreadsCPU(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	before, ok := procThreadsCPU(os.Getpid())
	if !ok || before <= 0 {
		t.Fatalf("procThreadsCPU(self) = %v, %v", before, ok)
	}
	var x uint64
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
		x = x*6364136223846793005 + 1
	}
	after, ok := procThreadsCPU(os.Getpid())
	// The loop ran 50 ms of wall time, at least part of it on a CPU; a
	// shared machine may have taken the rest.
	if !ok || after-before < time.Millisecond {
		t.Fatalf("CPU %v -> %v across a 50 ms loop (%d)", before, after, x)
	}
	if _, ok := procThreadsCPU(1 << 30); ok {
		t.Fatal("a process that does not exist has CPU time")
	}
}
