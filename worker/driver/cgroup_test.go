package driver

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ark-sched/ark/scheduler/spec"
)

// TestDetectCgroups covers what the detection does on hosts without a
// usable cgroup v2 (this machine is a cgroup v1/hybrid host, so the limits
// themselves cannot be exercised here).
func TestDetectCgroups(t *testing.T) {
	root := t.TempDir()
	if cg, why := DetectCgroups(root); cg != nil || !strings.Contains(why, "no cgroup v2") {
		t.Errorf("empty root: %v %q", cg, why)
	}
	if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("pids io\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if cg, why := DetectCgroups(root); cg != nil || !strings.Contains(why, "lacks the cpu or memory controller") {
		t.Errorf("no cpu/memory controllers: %v %q", cg, why)
	}
	if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpu memory pids\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cg, why := DetectCgroups(root)
	if cg == nil {
		t.Fatalf("controllers present: %s", why)
	}
	for _, d := range []string{root, filepath.Join(root, "ark")} {
		if b, _ := os.ReadFile(filepath.Join(d, "cgroup.subtree_control")); string(b) != "+cpu +memory +pids" {
			t.Errorf("%s subtree_control %q", d, b)
		}
	}
	tc, err := cg.create("alloc-1", 1500, 2<<30, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer removeCgroup(tc.dir)
	for file, want := range map[string]string{"cpu.max": "150000 100000", "memory.max": "2147483648", "pids.max": "16384"} {
		if b, _ := os.ReadFile(filepath.Join(tc.dir, file)); string(b) != want {
			t.Errorf("%s = %q, want %q", file, b, want)
		}
	}
	// Without the pids controller, no pids.max is written.
	nopids := &Cgroups{dir: cg.dir}
	tc2, err := nopids.create("alloc-2", 0, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Close(tc2.fd)
	defer removeCgroup(tc2.dir)
	if _, err := os.Stat(filepath.Join(tc2.dir, "pids.max")); err == nil {
		t.Error("pids.max written without the pids controller")
	}
	if err := os.WriteFile(filepath.Join(tc.dir, "memory.events"), []byte("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !oomKilled(tc.dir) {
		t.Error("oom_kill 1 not seen")
	}
}

// TestCgroupsOnThisHost: on a pure cgroup v2 host with delegation (not
// this machine), a task runs inside its cgroup.
func TestCgroupsOnThisHost(t *testing.T) {
	cg, why := DetectCgroups(DefaultCgroupRoot)
	if cg == nil {
		t.Skipf("cgroup limits not available here: %s", why)
	}
	dir := t.TempDir()
	cfg := TaskConfig{AllocID: "cg-test", Dir: dir, Stdout: filepath.Join(dir, "out"), Stderr: filepath.Join(dir, "err"),
		Cgroups: cg, CPUMilli: 500, MemoryBytes: 256 << 20, Env: []string{testPath},
		Task: specTask("sh", "-c", "cat /proc/self/cgroup")}
	h, err := Exec{}.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	<-h.Done()
	out, _ := os.ReadFile(filepath.Join(dir, "out"))
	if !strings.Contains(string(out), "/ark/cg-test") {
		t.Errorf("task's cgroup: %q", out)
	}
}

func specTask(argv ...string) spec.Task {
	return spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: argv}}
}

// TestForkBombStopsAtPidsMax: where cgroup v2 has the pids controller, a
// task cannot start more processes than its pids.max.
func TestForkBombStopsAtPidsMax(t *testing.T) {
	cg, why := DetectCgroups(DefaultCgroupRoot)
	if cg == nil {
		t.Skipf("cgroup v2 not available here: %s", why)
	}
	if !cg.pids {
		t.Skip("cgroup v2 here lacks the pids controller")
	}
	dir := t.TempDir()
	cfg := TaskConfig{AllocID: "pids-test", Dir: dir, Stdout: filepath.Join(dir, "out"), Stderr: filepath.Join(dir, "err"),
		Cgroups: cg, PidsMax: 20, Env: []string{testPath},
		Task: specTask("sh", "-c", "n=0; while [ $n -lt 100 ]; do sleep 5 & n=$((n+1)); done; echo started $n")}
	h, err := Exec{}.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	<-h.Done()
	if res := h.Result(); res.Succeeded() {
		out, _ := os.ReadFile(filepath.Join(dir, "out"))
		t.Fatalf("100 processes started under pids.max 20: %+v %q", res, out)
	}
}
