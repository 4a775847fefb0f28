package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchPlacementFromAnyDirectory: ark bench placement finds the openb
// data away from the repository (ARK_OPENB_DIR, or a binary kept in the
// repository), and without it says where the data is expected.
func TestBenchPlacementFromAnyDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("replays an openb sequence")
	}
	t.Parallel()
	data, _ := filepath.Abs("../../bench/data/openb")
	elsewhere := t.TempDir()
	run := func(bin string, env ...string) (int, string) {
		cmd := exec.Command(bin, "bench", "placement", "--policy", "firstfit")
		cmd.Dir = elsewhere
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return exitCodeOf(err), string(out)
	}
	if code, out := run(arkBin, "ARK_OPENB_DIR="); code != exitUsage || !strings.Contains(out, "the openb data (bench/data/openb of the Ark repository) is not in") || !strings.Contains(out, "ARK_OPENB_DIR") {
		t.Errorf("without the data: exit %d, want %d and where it is expected:\n%s", code, exitUsage, out)
	}
	if code, out := run(arkBin, "ARK_OPENB_DIR="+data); code != exitOK || !strings.Contains(out, "| arrivals_openb_pod_list_default_seed42 | firstfit |") {
		t.Errorf("with ARK_OPENB_DIR: exit %d:\n%s", code, out)
	}
	// A binary in a tree that holds bench/data/openb (a link to the real
	// one, as a build into the repository would sit).
	repo := t.TempDir()
	if err := os.MkdirAll(filepath.Join(repo, "bench", "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(data, filepath.Join(repo, "bench", "data", "openb")); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(repo, "bin", "ark")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(arkBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if code, out := run(bin, "ARK_OPENB_DIR="); code != exitOK || !strings.Contains(out, "| firstfit |") {
		t.Errorf("binary beside the data: exit %d:\n%s", code, out)
	}
}
