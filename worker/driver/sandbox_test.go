package driver

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ark-sched/ark/scheduler/spec"
)

// TestWorkDirOutsideAllocRefused: a workDir that is absolute or climbs out
// with ".." is refused by the driver (the spec's validation refuses it
// first; this is the second line), and nothing outside the allocation's
// directory is created or chowned.
func TestWorkDirOutsideAllocRefused(t *testing.T) {
	root := t.TempDir()
	victim := filepath.Join(root, "victim")
	if err := os.Mkdir(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(victim)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "data", "allocs", "a1")
	for _, wd := range []string{"/etc", victim, "../../victim", "../../../x", "a/../../../victim", ".."} {
		t.Run(wd, func(t *testing.T) {
			cfg := TaskConfig{
				AllocID: "a1", Dir: dir, Env: []string{testPath}, User: taskUserForTest(t),
				Task:   spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: []string{"/bin/true"}, WorkDir: wd}},
				Stdout: filepath.Join(dir, "logs", "stdout"), Stderr: filepath.Join(dir, "logs", "stderr"),
			}
			h, err := Exec{}.Start(context.Background(), cfg)
			if err == nil {
				wait(t, h)
				t.Fatalf("workDir %q was accepted", wd)
			}
			if !strings.Contains(err.Error(), "workDir") {
				t.Fatalf("error %q does not name workDir", err)
			}
		})
	}
	after, err := os.Stat(victim)
	if err != nil {
		t.Fatal(err)
	}
	if st, st0 := after.Sys().(*syscall.Stat_t), before.Sys().(*syscall.Stat_t); st.Uid != st0.Uid || st.Gid != st0.Gid || after.Mode() != before.Mode() {
		t.Fatalf("a directory outside the allocation changed owner or mode: %v %d:%d -> %v %d:%d", before.Mode(), st0.Uid, st0.Gid, after.Mode(), st.Uid, st.Gid)
	}
	if _, err := os.Stat(filepath.Join(root, "x")); err == nil {
		t.Fatal("a directory was created outside the allocation")
	}
	if fi, err := os.Stat("/etc"); err == nil && fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Fatal("/etc is no longer root's")
	}
}

// taskUserForTest is "nobody" when the test runs as root (so the chown
// path is exercised), else "" (the test's own user).
func taskUserForTest(t *testing.T) string {
	t.Helper()
	if os.Geteuid() == 0 {
		return "nobody"
	}
	return ""
}

// TestAllocDirModes: the allocation's directory is the agent's and only
// searchable, the task's work directory is 0700 and its user's, and the
// logs are 0600 in a 0700 directory.
func TestAllocDirModes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the task as another user")
	}
	dir := filepath.Join(t.TempDir(), "allocs", "a1")
	cfg := TaskConfig{
		AllocID: "a1", Dir: dir, Env: []string{testPath}, User: "nobody",
		Task:   spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: []string{"/bin/sh", "-c", "id -u; touch mine"}, WorkDir: "out"}},
		Stdout: filepath.Join(dir, "logs", "stdout"), Stderr: filepath.Join(dir, "logs", "stderr"),
	}
	h, err := Exec{}.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res := wait(t, h); !res.Succeeded() {
		t.Fatalf("task: %+v; stderr %s", res, readFile(t, cfg.Stderr))
	}
	nobody, err := lookupUser("nobody")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(readFile(t, cfg.Stdout)); got != strconv.FormatUint(uint64(nobody.uid), 10) {
		t.Fatalf("task ran as uid %s, want nobody", got)
	}
	for _, c := range []struct {
		path string
		mode os.FileMode
		uid  uint32
	}{
		{dir, os.ModeDir | 0o711, 0},
		{filepath.Join(dir, "logs"), os.ModeDir | 0o700, 0},
		{cfg.Stdout, 0o600, 0},
		{filepath.Join(dir, statusFile), 0o600, 0},
		{filepath.Join(dir, "work"), os.ModeDir | 0o700, nobody.uid},
		{filepath.Join(dir, "work", "out"), os.ModeDir | 0o700, nobody.uid},
		{filepath.Join(dir, "work", "out", "mine"), 0, nobody.uid},
	} {
		fi, err := os.Lstat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if c.mode != 0 && fi.Mode() != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, fi.Mode(), c.mode)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != c.uid {
			t.Errorf("%s: owner %d, want %d", c.path, uid, c.uid)
		}
	}
}

func TestRootTaskUserRefused(t *testing.T) {
	if _, err := lookupUser("root"); err == nil || !strings.Contains(err.Error(), "never run as root") {
		t.Fatalf("root as task user: %v", err)
	}
}
