package raftbench

import (
	"os"
	"testing"
)

// TestProcCPU: the servers' CPU comes from /proc (internal/procstat parses it).
func TestProcCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	if _, ok := procCPU(os.Getpid()); !ok {
		t.Fatal("procCPU of this process failed")
	}
}
