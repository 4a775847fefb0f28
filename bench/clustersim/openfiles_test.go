//go:build unix

package clustersim

import (
	"strings"
	"syscall"
	"testing"
)

func TestOpenFilesFor(t *testing.T) {
	for _, tc := range []struct {
		nodes int
		want  uint64
	}{
		{1, 2 + 32 + 4096},
		{64, 128 + 32 + 4096},
		{10000, 20000 + 157*32 + 4096},
	} {
		if got := openFilesFor(tc.nodes); got != tc.want {
			t.Errorf("openFilesFor(%d) = %d, want %d", tc.nodes, got, tc.want)
		}
	}
}

// TestRaiseOpenFiles only raises this process's limit (as the bench
// does), a little: at the limit it is a no-op, above it it either takes
// the new limit or says why not.
func TestRaiseOpenFiles(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skip(err)
	}
	if got, err := raiseOpenFiles(lim.Cur); err != nil || got != lim.Cur {
		t.Fatalf("raiseOpenFiles(%d) = %d, %v; want the limit as it is", lim.Cur, got, err)
	}
	want := lim.Max + 16
	got, err := raiseOpenFiles(want)
	switch {
	case err == nil && got != want:
		t.Errorf("raiseOpenFiles(%d) = %d with no error", want, got)
	case err != nil && (got != lim.Max || !strings.Contains(err.Error(), "want")):
		t.Errorf("raiseOpenFiles(%d) = %d, %v", want, got, err)
	}
}
