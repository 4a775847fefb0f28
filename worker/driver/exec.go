package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/ark-sched/ark/scheduler/spec"
)

// Exec runs any command as a process in its own process group.
type Exec struct{}

// Name is "exec".
func (Exec) Name() string { return spec.DriverExec }

// Start starts the task's command.
func (Exec) Start(_ context.Context, cfg TaskConfig) (Handle, error) {
	if cfg.Task.Exec == nil || len(cfg.Task.Exec.Command) == 0 {
		return nil, fmt.Errorf("allocation %s: exec task has no command", cfg.AllocID)
	}
	argv := cfg.Task.Exec.Command
	var creds *taskCreds
	if cfg.User != "" {
		c, err := lookupUser(cfg.User)
		if err != nil {
			return nil, fmt.Errorf("allocation %s: %w", cfg.AllocID, err)
		}
		creds = &c
	}
	workDir, err := makeTaskDirs(cfg.Dir, cfg.Task.Exec.WorkDir, creds)
	if err != nil {
		return nil, fmt.Errorf("allocation %s: %w", cfg.AllocID, err)
	}
	path, err := lookPath(argv[0], cfg.Env)
	if err != nil {
		return nil, fmt.Errorf("allocation %s: %w", cfg.AllocID, err)
	}
	// The supervisor writes the task's output (rotating it); its own
	// messages before that go to the stderr log too.
	stderr, err := openLog(cfg.Stderr)
	if err != nil {
		return nil, err
	}
	defer stderr.Close()
	// Both logs exist from the start, so they can be read at once.
	stdout, err := openLog(cfg.Stdout)
	if err != nil {
		return nil, err
	}
	stdout.Close()

	// The supervisor starts the program; catch what would keep it from
	// starting here, where the error can still be returned.
	abs := path
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(workDir, abs)
	}
	if fi, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("allocation %s: start %s: %w", cfg.AllocID, argv[0], err)
	} else if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("allocation %s: start %s: not an executable file", cfg.AllocID, argv[0])
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the agent's executable to supervise the task: %w", err)
	}
	_ = os.Remove(filepath.Join(cfg.Dir, statusFile))
	_ = os.Remove(filepath.Join(cfg.Dir, sandboxFile))
	read, write := confinePaths(cfg, abs)
	sup := superviseSpec{
		Path: path, Args: argv[1:],
		// Exactly cfg.Env, never nil: a nil Env would hand the task the
		// agent's own environment.
		Env:    append(make([]string, 0, len(cfg.Env)), cfg.Env...),
		Status: filepath.Join(cfg.Dir, statusFile),
		Stdout: cfg.Stdout, Stderr: cfg.Stderr,
		LogMaxBytes: cfg.LogMaxBytes, LogKeep: cfg.LogKeep,
		// Namespaces need root (no user namespaces here).
		Confine: confineSpec{Namespaces: os.Geteuid() == 0, WorkRoot: filepath.Join(cfg.Dir, "work"), Cwd: workDir, Read: read, Write: write},
		Sandbox: filepath.Join(cfg.Dir, sandboxFile),
	}
	if creds != nil {
		sup.Creds, sup.UID, sup.GID, sup.Groups = true, creds.uid, creds.gid, creds.groups
	}
	spec, err := json.Marshal(sup)
	if err != nil {
		return nil, err
	}
	// Not exec.CommandContext: the task's life is governed by Stop, not by
	// the context of whoever started it. The supervisor (this executable
	// again) runs the task; see supervise.go.
	cmd := exec.Command(self)
	cmd.Env = []string{superviseEnv + "=" + string(spec)}
	cmd.Dir = workDir
	cmd.Stdin = nil
	cmd.Stdout = nil
	cmd.Stderr = stderr
	// Its own process group, so that stopping the task reaches every
	// process it started (torchrun's workers, a shell's children).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var cg *taskCgroup
	if cfg.Cgroups != nil {
		if cg, err = cfg.Cgroups.create(cfg.AllocID, cfg.CPUMilli, cfg.MemoryBytes, cfg.PidsMax); err != nil {
			return nil, fmt.Errorf("allocation %s: %w", cfg.AllocID, err)
		}
		defer syscall.Close(cg.fd)
		// Started inside its cgroup (clone3 CLONE_INTO_CGROUP): no window
		// in which the task runs unlimited.
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, cg.fd
	}
	if err := cmd.Start(); err != nil {
		if cg != nil {
			removeCgroup(cg.dir)
		}
		return nil, fmt.Errorf("allocation %s: start %s: %w", cfg.AllocID, argv[0], err)
	}
	h := &execHandle{cmd: cmd, dir: cfg.Dir, done: make(chan struct{})}
	if cg != nil {
		h.cgroup = cg.dir
	}
	go h.wait()
	// What a restarted agent needs to find the task again.
	start, err := procStartTime(cmd.Process.Pid)
	if err == nil {
		err = writeJSONAtomic(filepath.Join(cfg.Dir, taskFile), taskRecord{Pid: cmd.Process.Pid, StartTime: start})
	}
	if err != nil {
		// A task that ends at once can be gone before its start time is
		// read (its supervisor exited): wait for the reaper briefly before
		// calling it a failure.
		select {
		case <-h.done: // it ended already: nothing to re-attach to
		case <-time.After(time.Second):
			_ = h.Stop(context.Background(), 0)
			return nil, fmt.Errorf("allocation %s: record the task for re-attach: %w", cfg.AllocID, err)
		}
	}
	return h, nil
}

// lookPath resolves a program the way the task's own PATH would.
func lookPath(prog string, env []string) (string, error) {
	if filepath.IsAbs(prog) || filepath.Base(prog) != prog {
		return prog, nil
	}
	pathVar := ""
	for _, kv := range env {
		if len(kv) > 5 && kv[:5] == "PATH=" {
			pathVar = kv[5:]
		}
	}
	for _, dir := range filepath.SplitList(pathVar) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, prog)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("program %q not found in the task's PATH (%s)", prog, pathVar)
}

// openLog opens a task's log for appending. Logs live in the allocation's
// logs directory (0700, the agent's), 0600: the supervisor writes what the
// task prints through a pipe, so only the agent reads them (and serves them
// to callers the API lets read the job's logs); no other task can.
func openLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open task log: %w", err)
	}
	return f, nil
}

type execHandle struct {
	cmd    *exec.Cmd
	dir    string
	cgroup string // the task's cgroup, if it has one
	done   chan struct{}

	mu     sync.Mutex
	result Result
}

func (h *execHandle) Pid() int              { return h.cmd.Process.Pid }
func (h *execHandle) Done() <-chan struct{} { return h.done }

func (h *execHandle) Result() Result {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.result
}

func (h *execHandle) wait() {
	err := h.cmd.Wait()
	res := Result{}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.ExitCode = -1
			res.Signal = signalName(ws.Signal())
		} else {
			res.ExitCode = ee.ExitCode()
		}
	default:
		res.ExitCode = -1
		res.Err = err
	}
	// The supervisor recorded how the task itself ended; without the
	// record (the supervisor was killed), its own end is what we know.
	if st, ok := readStatus(h.dir); ok {
		res = st
	}
	// The leader is gone; make sure nothing it left in its group lives on.
	_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
	if h.cgroup != "" {
		if oomKilled(h.cgroup) && res.Err == nil {
			res.Err = errors.New("killed by the kernel's OOM killer: the task used more memory than resources.memory")
		}
		removeCgroup(h.cgroup)
	}
	h.mu.Lock()
	h.result = res
	h.mu.Unlock()
	close(h.done)
}

func (h *execHandle) Stop(ctx context.Context, grace time.Duration) error {
	return stopGroup(ctx, h.cmd.Process.Pid, h.done, grace)
}

// stopGroup sends SIGTERM to a task's process group, then SIGKILL after
// grace, and returns once done is closed or ctx ends.
func stopGroup(ctx context.Context, pgid int, done <-chan struct{}, grace time.Duration) error {
	select {
	case <-done:
		return nil
	default:
	}
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal process group %d: %w", pgid, err)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill process group %d: %w", pgid, err)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGSEGV:
		return "SIGSEGV"
	case syscall.SIGABRT:
		return "SIGABRT"
	case syscall.SIGBUS:
		return "SIGBUS"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGPIPE:
		return "SIGPIPE"
	}
	return fmt.Sprintf("signal %d (%s)", int(s), s)
}
