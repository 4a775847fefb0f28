package clustersim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestProfileErrors: with the progress log off (--json) the result says
// which profile files were not written and why; a flood is cut to 20 and
// a count.
func TestProfileErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/debug/pprof/heap" {
			_, _ = io.WriteString(w, "profile")
			return
		}
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	var p profileErrors
	p.add(saveProfile(context.Background(), addr, "heap", filepath.Join(dir, "leader-heap.pprof"), io.Discard))
	p.add(saveProfile(context.Background(), addr, "profile?seconds=1", filepath.Join(dir, "leader-cpu-01-s1.pprof"), io.Discard))
	if got := p.list(); !slices.Equal(got, []string{"leader-cpu-01-s1.pprof: 403 Forbidden"}) {
		t.Errorf("errors %q, want the forbidden profile alone", got)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "leader-heap.pprof")); err != nil || string(b) != "profile" {
		t.Errorf("heap profile %q, %v", b, err)
	}

	var flood profileErrors
	for i := range maxProfileErrors + 5 {
		flood.add(fmt.Errorf("leader-cpu-%02d: no leader: %w", i, errors.New("timeout")))
	}
	got := flood.list()
	if len(got) != maxProfileErrors+1 || got[maxProfileErrors] != "and 5 more" {
		t.Errorf("a flood of 25 errors listed as %d entries ending %q", len(got), got[len(got)-1])
	}
}
