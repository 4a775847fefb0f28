package raftbench

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       time.Duration
		ok         bool
	}{
		{"plain", "1234 (ark) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 12 0 5 0", 281 * clockTick, true},
		{"a name with spaces and parens", "1234 (a (b) c) R 1 1 1 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 5 0", 10 * clockTick, true},
		{"cut short", "1234 (ark) S 1 2 3", 0, false},
		{"no name", "garbage", 0, false},
		{"not numbers", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 u s 0", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseStat(tc.line)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("parseStat = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	if _, err := os.Stat("/proc/self/stat"); err == nil {
		if _, ok := procCPU(os.Getpid()); !ok {
			t.Fatal("procCPU of this process failed")
		}
	}
}
