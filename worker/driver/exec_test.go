package driver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/spec"
)

const testPath = "PATH=/usr/local/bin:/usr/bin:/bin"

// start runs argv with the exec driver in a fresh allocation directory.
func start(t *testing.T, env []string, argv ...string) (Handle, TaskConfig) {
	t.Helper()
	dir := t.TempDir()
	cfg := TaskConfig{
		AllocID: "alloc-1",
		Task:    spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: argv}},
		Env:     env,
		Dir:     dir,
		Stdout:  filepath.Join(dir, "logs", "stdout"),
		Stderr:  filepath.Join(dir, "logs", "stderr"),
	}
	h, err := Exec{}.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Stop(ctx, 0)
	})
	return h, cfg
}

// sh runs a /bin/sh script.
func sh(t *testing.T, script string) (Handle, TaskConfig) {
	t.Helper()
	return start(t, []string{testPath}, "/bin/sh", "-c", script)
}

func wait(t *testing.T, h Handle) Result {
	t.Helper()
	select {
	case <-h.Done():
		return h.Result()
	case <-time.After(10 * time.Second):
		t.Fatal("task did not end within 10s")
		return Result{}
	}
}

// eventually polls cond until it holds or 5s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// gone reports whether a process no longer runs: it does not exist, or it
// is a zombie waiting for a parent (such as a container's init) to reap it.
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the command name in parentheses: "pid (comm) S ...".
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		script    string
		exit      int
		signal    string
		succeeded bool
	}{
		{"exit 0", 0, "", true},
		{"true", 0, "", true},
		{"exit 3", 3, "", false},
		{"exit 255", 255, "", false},
		{"kill -KILL $$", -1, "SIGKILL", false},
		{"kill -TERM $$", -1, "SIGTERM", false},
		{"kill -SEGV $$", -1, "SIGSEGV", false},
		{"kill -USR1 $$", -1, "signal 10 (user defined signal 1)", false},
	}
	for _, tt := range tests {
		t.Run(tt.script, func(t *testing.T) {
			h, _ := sh(t, tt.script)
			r := wait(t, h)
			if r.ExitCode != tt.exit || r.Signal != tt.signal || r.Err != nil || r.Succeeded() != tt.succeeded {
				t.Fatalf("Result = %+v, want exit %d signal %q", r, tt.exit, tt.signal)
			}
		})
	}
}

func TestOutputFiles(t *testing.T) {
	h, cfg := sh(t, "echo to-stdout; echo to-stderr >&2")
	if r := wait(t, h); !r.Succeeded() {
		t.Fatalf("Result = %+v", r)
	}
	if got := readFile(t, cfg.Stdout); got != "to-stdout\n" {
		t.Errorf("stdout = %q", got)
	}
	if got := readFile(t, cfg.Stderr); got != "to-stderr\n" {
		t.Errorf("stderr = %q", got)
	}

	// A restarted task appends to the same files.
	h2, err := Exec{}.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, h2)
	if got := readFile(t, cfg.Stdout); got != "to-stdout\nto-stdout\n" {
		t.Errorf("stdout after a second run = %q", got)
	}
}

func TestEnvironmentIsExact(t *testing.T) {
	env := []string{"A=1", "B=two words", "RANK=3", testPath}
	h, cfg := start(t, env, "env")
	if r := wait(t, h); !r.Succeeded() {
		t.Fatalf("Result = %+v", r)
	}
	got := strings.Split(strings.TrimSuffix(readFile(t, cfg.Stdout), "\n"), "\n")
	if strings.Join(got, "|") != strings.Join(env, "|") {
		t.Fatalf("task saw env %q, want exactly %q", got, env)
	}
}

// TestEmptyEnvironmentIsEmpty: a task given no environment gets none, not
// the agent's own (which may hold its credentials).
func TestEmptyEnvironmentIsEmpty(t *testing.T) {
	t.Setenv("ARK_AGENT_SECRET", "do-not-leak")
	envBin, err := exec.LookPath("env")
	if err != nil {
		t.Skip("no env program")
	}
	for _, env := range [][]string{nil, {}} {
		h, cfg := start(t, env, envBin)
		if r := wait(t, h); !r.Succeeded() {
			t.Fatalf("Result = %+v", r)
		}
		if got := readFile(t, cfg.Stdout); got != "" {
			t.Fatalf("task given env %#v saw %q", env, got)
		}
	}
}

func TestWorkDir(t *testing.T) {
	h, cfg := sh(t, "pwd")
	wait(t, h)
	want := filepath.Join(cfg.Dir, "work")
	if got := strings.TrimSpace(readFile(t, cfg.Stdout)); got != want {
		t.Fatalf("default work dir = %q, want %q", got, want)
	}

	// A spec's workDir is relative to the allocation's work directory.
	custom := filepath.Join(cfg.Dir, "work", "a", "b")
	cfg.Task.Exec.WorkDir = "a/b"
	cfg.Stdout = filepath.Join(cfg.Dir, "logs", "stdout2")
	h2, err := Exec{}.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, h2)
	if got := strings.TrimSpace(readFile(t, cfg.Stdout)); got != custom {
		t.Fatalf("work dir = %q, want %q", got, custom)
	}
}

func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	base := TaskConfig{AllocID: "alloc-9", Dir: dir, Stdout: filepath.Join(dir, "o"), Stderr: filepath.Join(dir, "e")}
	tests := []struct {
		name string
		task spec.Task
		env  []string
		want string
	}{
		{"no exec", spec.Task{Driver: spec.DriverExec}, nil, "allocation alloc-9: exec task has no command"},
		{"empty command", spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{}}, nil, "exec task has no command"},
		{"not on PATH", spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: []string{"no-such-program-ark"}}},
			[]string{"PATH=/nonexistent:/also-not"}, `allocation alloc-9: program "no-such-program-ark" not found in the task's PATH (/nonexistent:/also-not)`},
		{"no PATH", spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: []string{"sh"}}},
			nil, `program "sh" not found in the task's PATH ()`},
		{"directory on PATH is not a program", spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: []string{"logs"}}},
			[]string{"PATH=" + dir}, `program "logs" not found`},
		{"absolute path missing", spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: []string{"/nonexistent/prog"}}},
			[]string{testPath}, "allocation alloc-9: start /nonexistent/prog:"},
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			cfg.Task, cfg.Env = tt.task, tt.env
			h, err := Exec{}.Start(context.Background(), cfg)
			if err == nil {
				_ = h.Stop(context.Background(), 0)
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start error %q, want %q", err, tt.want)
			}
		})
	}
}

func TestPATHLookupUsesTaskEnv(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "hello-ark"), []byte("#!/bin/sh\necho hi from $0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	h, cfg := start(t, []string{"PATH=/nonexistent:" + bin}, "hello-ark")
	if r := wait(t, h); !r.Succeeded() {
		t.Fatalf("Result = %+v", r)
	}
	if got := readFile(t, cfg.Stdout); got != "hi from "+filepath.Join(bin, "hello-ark")+"\n" {
		t.Fatalf("stdout = %q", got)
	}
}

// childOf starts a shell that runs a background sleep and writes its PID,
// then waits; it returns the handle and the child's PID.
func childOf(t *testing.T, prelude string) (Handle, int) {
	t.Helper()
	h, cfg := sh(t, prelude+"sleep 300 & echo $! > child.pid; wait")
	pidFile := filepath.Join(cfg.Dir, "work", "child.pid")
	var pid int
	eventually(t, "the child's PID", func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	// The task wrote its PID in its own PID namespace.
	pid = hostPid(t, h.Pid(), pid)
	if gone(pid) {
		t.Fatalf("child %d is not running", pid)
	}
	return h, pid
}

// hostPid maps the PID a task sees (in its own PID namespace, under its
// init, the supervisor's child) to the host's.
func hostPid(t *testing.T, supervisor, nsPid int) int {
	t.Helper()
	init := 0
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", supervisor))
	for _, f := range tasks {
		if b, err := os.ReadFile(f); err == nil && len(strings.Fields(string(b))) > 0 {
			init, _ = strconv.Atoi(strings.Fields(string(b))[0])
		}
	}
	if init == 0 {
		t.Fatalf("supervisor %d has no init", supervisor)
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", init))
	if err != nil {
		t.Fatal(err)
	}
	if self, _ := os.Readlink("/proc/self/ns/pid"); self == ns {
		return nsPid // no PID namespace (not root): the same numbers
	}
	statuses, _ := filepath.Glob("/proc/[0-9]*/status")
	for _, f := range statuses {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == "NSpid:" && f[len(f)-1] == strconv.Itoa(nsPid) {
				host, _ := strconv.Atoi(f[1])
				if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", host)); l == ns {
					return host
				}
			}
		}
	}
	t.Fatalf("no process %d in the task's PID namespace %s", nsPid, ns)
	return 0
}

func TestStopTerminatesProcessGroup(t *testing.T) {
	h, child := childOf(t, "")
	if pgid, err := syscall.Getpgid(h.Pid()); err != nil || pgid != h.Pid() {
		t.Fatalf("task's process group = %d, %v; want its own (%d)", pgid, err, h.Pid())
	}
	if pgid, _ := syscall.Getpgid(child); pgid != h.Pid() {
		t.Fatalf("child's process group = %d, want %d", pgid, h.Pid())
	}
	start := time.Now()
	if err := h.Stop(context.Background(), 10*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Stop took %v: SIGTERM did not end the task", d)
	}
	if r := h.Result(); r.Signal != "SIGTERM" {
		t.Fatalf("Result = %+v, want ended by SIGTERM", r)
	}
	eventually(t, "the background child to be gone", func() bool { return gone(child) })
	// Stop on an ended task is a no-op.
	if err := h.Stop(context.Background(), time.Second); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestLeaderExitKillsItsGroup(t *testing.T) {
	// The leader waits for the go-ahead, so that its child's PID (in the
	// task's namespace) can be mapped to the host's while it runs.
	h, cfg := sh(t, "sleep 300 & echo $! > child.pid; while [ ! -e go ]; do sleep 0.02; done; exit 0")
	work := filepath.Join(cfg.Dir, "work")
	var child int
	eventually(t, "the child's PID", func() bool {
		b, err := os.ReadFile(filepath.Join(work, "child.pid"))
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		child, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	child = hostPid(t, h.Pid(), child)
	if err := os.WriteFile(filepath.Join(work, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := wait(t, h); !r.Succeeded() {
		t.Fatalf("Result = %+v", r)
	}
	eventually(t, "the orphaned child to be gone", func() bool { return gone(child) })
}

func TestStopEscalatesToSIGKILL(t *testing.T) {
	// The shell and (inheriting the ignored disposition) its children
	// ignore SIGTERM.
	h, child := childOf(t, "trap '' TERM; ")
	const grace = 200 * time.Millisecond
	start := time.Now()
	if err := h.Stop(context.Background(), grace); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if d := time.Since(start); d < grace {
		t.Fatalf("Stop returned after %v, before the grace of %v", d, grace)
	}
	if r := h.Result(); r.Signal != "SIGKILL" || r.ExitCode != -1 {
		t.Fatalf("Result = %+v, want SIGKILL", r)
	}
	eventually(t, "the child to be gone", func() bool { return gone(child) })
}

func TestStopHonoursContext(t *testing.T) {
	h, _ := childOf(t, "trap '' TERM; ")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := h.Stop(ctx, time.Hour)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Stop took %v despite its context", d)
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v", err)
	}
	// The context cut the grace short: the task was killed.
	if r := wait(t, h); r.Signal != "SIGKILL" {
		t.Fatalf("Result = %+v, want SIGKILL", r)
	}
}

func TestName(t *testing.T) {
	if (Exec{}).Name() != "exec" {
		t.Fatal("exec driver is not named exec")
	}
	var _ Driver = Exec{}
}

func TestRunAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch users")
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skip("no user nobody")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := TaskConfig{AllocID: "as-nobody", Dir: dir, Stdout: filepath.Join(dir, "out"), Stderr: filepath.Join(dir, "err"), User: "nobody",
		Env:  []string{testPath},
		Task: spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: []string{"sh", "-c", "id -u; touch mine"}}}}
	h, err := Exec{}.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	<-h.Done()
	if r := h.Result(); !r.Succeeded() {
		t.Fatalf("task as nobody: %+v", r)
	}
	out, _ := os.ReadFile(filepath.Join(dir, "out"))
	u, _ := user.Lookup("nobody")
	if strings.TrimSpace(string(out)) != u.Uid {
		t.Errorf("task ran as uid %q, want %s", out, u.Uid)
	}
	bad := TaskConfig{AllocID: "x", Dir: t.TempDir(), Stdout: filepath.Join(dir, "o2"), Stderr: filepath.Join(dir, "e2"),
		User: "no-such-user-ark", Env: []string{testPath},
		Task: spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: []string{"true"}}}}
	if _, err := (Exec{}).Start(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "no-such-user-ark") {
		t.Errorf("unknown user: %v", err)
	}
}

// TestLogRotation: output past the size limit rotates into numbered files,
// keeping the configured number, and nothing within them is lost.
func TestLogRotation(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "logs", "stdout.log")
	cfg := TaskConfig{AllocID: "rot", Dir: dir, Stdout: out, Stderr: filepath.Join(dir, "logs", "stderr.log"),
		LogMaxBytes: 1000, LogKeep: 2, Env: []string{testPath},
		Task: spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: []string{"sh", "-c",
			`i=0; while [ $i -lt 100 ]; do echo "line $i of the task's output, padded to about fifty bytes"; i=$((i+1)); done`}}}}
	h, err := Exec{}.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	<-h.Done()
	if r := h.Result(); !r.Succeeded() {
		t.Fatalf("%+v", r)
	}
	var kept []string
	for _, p := range []string{out + ".2", out + ".1", out} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if len(b) > 1000 {
			t.Errorf("%s has %d bytes, over the 1000-byte limit", p, len(b))
		}
		kept = append(kept, strings.Split(strings.TrimSpace(string(b)), "\n")...)
	}
	if _, err := os.Stat(out + ".3"); !os.IsNotExist(err) {
		t.Errorf("more than 2 rotated files kept: %v", err)
	}
	// The kept files hold the newest lines, in order, ending with line 99.
	last := kept[len(kept)-1]
	if !strings.HasPrefix(last, "line 99 ") {
		t.Errorf("last kept line %q", last)
	}
	for i := 1; i < len(kept); i++ {
		var a, b int
		fmt.Sscanf(kept[i-1], "line %d", &a)
		fmt.Sscanf(kept[i], "line %d", &b)
		if b != a+1 {
			t.Fatalf("lines out of order or missing: %q then %q", kept[i-1], kept[i])
		}
	}
}

// TestLogRotationKeepsLinesWhole: a line written on its own (as a task's
// pipe often delivers them) that does not fit the current file starts the
// next one instead of being split across two.
func TestLogRotationKeepsLinesWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.log")
	w, err := openRotating(path, 100, 5)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := fmt.Fprintf(w, "line %d padded to about thirty\n", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + ".1", path + ".2"} {
		b := readFile(t, p)
		if len(b) > 100 || !strings.HasSuffix(b, "\n") || !strings.HasPrefix(b, "line ") {
			t.Errorf("%s holds a split line or is over the limit: %q", p, b)
		}
	}
}
