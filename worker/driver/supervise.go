package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ark-sched/ark/internal/procstat"
)

// A task does not run as the agent's child but under a small supervisor:
// the agent's own executable re-executed with ARK_SUPERVISE set (the
// reexec pattern). The supervisor leads the task's process group, starts
// the task, waits for it and records how it ended in a status file. If the
// agent dies, the supervisor and the task live on; the restarted agent finds
// them from the allocation's directory (task.json) and re-attaches, and the
// status file gives it the task's real exit code.

const superviseEnv = "ARK_SUPERVISE"

// Files in an allocation's directory.
const (
	statusFile = "status.json" // how the task ended, written by the supervisor
	taskFile   = "task.json"   // the supervisor's pid and start time, written by the agent
)

type superviseSpec struct {
	Path   string   `json:"path"`
	Args   []string `json:"args"`
	Env    []string `json:"env"`
	Status string   `json:"status"`
	// Stdout and Stderr are the task's log files, rotated by size.
	Stdout      string `json:"stdout"`
	Stderr      string `json:"stderr"`
	LogMaxBytes int64  `json:"logMaxBytes,omitempty"`
	LogKeep     int    `json:"logKeep,omitempty"`
	// UID and GID, when Creds is set, are whom the task runs as.
	Creds  bool     `json:"creds,omitempty"`
	UID    uint32   `json:"uid,omitempty"`
	GID    uint32   `json:"gid,omitempty"`
	Groups []uint32 `json:"groups,omitempty"`
	// Confine is how the task's init confines it; Sandbox is where the
	// supervisor records what the init applied.
	Confine confineSpec `json:"confine"`
	Sandbox string      `json:"sandbox"`
}

type exitStatus struct {
	ExitCode int    `json:"exitCode"`
	Signal   string `json:"signal,omitempty"`
	Error    string `json:"error,omitempty"`
}

// MaybeSupervise turns this process into a task supervisor when the agent
// started it as one, and never returns then. Every binary (and test
// binary) that runs the exec driver calls it first thing in main.
func MaybeSupervise() {
	maybeTaskInit()
	raw := os.Getenv(superviseEnv)
	if raw == "" {
		return
	}
	os.Exit(supervise(raw))
}

func supervise(raw string) int {
	var spec superviseSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "ark supervisor: bad spec: %v\n", err)
		return 127
	}
	// The agent stops a task by signalling its whole group: the task gets
	// the signal, and the supervisor stays to record how it ended. The
	// signals are caught, not ignored: an ignored signal would stay
	// ignored in the task.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		for range sigs {
		}
	}()
	// The task runs under its init (this executable once more), which
	// confines it; see confine.go.
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "ark supervisor: find the executable for the task's init: %v\n", err)
		return 127
	}
	cmd := exec.Command(self)
	keep := spec.LogKeep
	if keep == 0 {
		keep = DefaultLogKeep
	}
	for _, out := range []struct {
		path string
		dst  *io.Writer
	}{{spec.Stdout, &cmd.Stdout}, {spec.Stderr, &cmd.Stderr}} {
		if out.path == "" {
			continue
		}
		w, err := openRotating(out.path, spec.LogMaxBytes, keep)
		if err != nil {
			fmt.Fprintf(os.Stderr, "ark supervisor: open task log: %v\n", err)
			return 127
		}
		defer w.Close()
		// A pipe (not the file) so the supervisor can rotate what the task
		// writes; os/exec copies it in a goroutine until the task and
		// everything holding the pipe are done.
		*out.dst = w
	}
	st := runInit(cmd, spec)
	if err := writeJSONAtomic(spec.Status, st); err != nil {
		fmt.Fprintf(os.Stderr, "ark supervisor: record exit status: %v\n", err)
	}
	return 0
}

func waitStatus(err error) exitStatus {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return exitStatus{}
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return exitStatus{ExitCode: -1, Signal: signalName(ws.Signal())}
		}
		return exitStatus{ExitCode: ee.ExitCode()}
	}
	return exitStatus{ExitCode: -1, Error: err.Error()}
}

func writeJSONAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, b)
}

// WriteFileAtomic replaces path with data: written to a temporary file,
// fsync'd, then renamed over path, so a reader sees the old or the new
// content, never a part.
func WriteFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readStatus reads how a task ended, if its supervisor recorded it.
func readStatus(dir string) (Result, bool) {
	b, err := os.ReadFile(filepath.Join(dir, statusFile))
	if err != nil {
		return Result{}, false
	}
	st, err := decodeStatus(b)
	if err != nil {
		return Result{}, false
	}
	res := Result{ExitCode: st.ExitCode, Signal: st.Signal}
	if st.Error != "" {
		res.Err = errors.New(st.Error)
	}
	return res, true
}

// decodeStatus parses a status file. The supervisor always writes
// exitCode, so a file without one ("null", "{}") records nothing: it must
// not read as a task that exited 0.
func decodeStatus(b []byte) (exitStatus, error) {
	var st struct {
		ExitCode *int   `json:"exitCode"`
		Signal   string `json:"signal"`
		Error    string `json:"error"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return exitStatus{}, fmt.Errorf("status file: %w", err)
	}
	switch {
	case st.ExitCode == nil:
		return exitStatus{}, errors.New("status file: no exitCode")
	case *st.ExitCode < -1 || *st.ExitCode > 255:
		return exitStatus{}, fmt.Errorf("status file: exitCode %d outside [-1, 255]", *st.ExitCode)
	case st.Signal != "" && *st.ExitCode != -1:
		return exitStatus{}, fmt.Errorf("status file: signal %s with exitCode %d, want -1", st.Signal, *st.ExitCode)
	}
	return exitStatus{ExitCode: *st.ExitCode, Signal: st.Signal, Error: st.Error}, nil
}

type taskRecord struct {
	Pid       int    `json:"pid"`
	StartTime uint64 `json:"startTime"` // clock ticks since boot, /proc/PID/stat field 22
}

// procStartTime returns a process's start time, which tells a live process
// from a later one that reused its pid.
func procStartTime(pid int) (uint64, error) {
	st, err := procstat.Read(pid)
	if err != nil {
		return 0, err
	}
	if st.State == 'Z' { // a zombie has ended
		return 0, fmt.Errorf("process %d has exited", pid)
	}
	return st.StartTime, nil
}

// ErrGone means a task's supervisor is no longer running.
var ErrGone = errors.New("task is no longer running")

// Reattach finds the task an earlier agent started in dir. It returns a
// handle to the running task, or the task's result when it has ended (the
// result's Err says so when no exit status was recorded).
func Reattach(dir string) (Handle, *Result, error) {
	b, err := os.ReadFile(filepath.Join(dir, taskFile))
	if err != nil {
		return nil, nil, fmt.Errorf("read task record: %w", err)
	}
	var rec taskRecord
	if err := json.Unmarshal(b, &rec); err != nil || rec.Pid <= 0 {
		return nil, nil, fmt.Errorf("malformed task record in %s", dir)
	}
	if start, err := procStartTime(rec.Pid); err == nil && start == rec.StartTime {
		h := &pollHandle{pid: rec.Pid, start: rec.StartTime, dir: dir, done: make(chan struct{})}
		go h.poll()
		return h, nil, nil
	}
	if res, ok := readStatus(dir); ok {
		return nil, &res, nil
	}
	return nil, &Result{ExitCode: -1, Err: fmt.Errorf("%w: its supervisor died without recording how the task ended", ErrGone)}, nil
}

// pollHandle is a task re-attached after an agent restart: not the agent's
// child, so it is watched through /proc.
type pollHandle struct {
	pid   int
	start uint64
	dir   string
	done  chan struct{}

	result Result
}

func (h *pollHandle) Pid() int              { return h.pid }
func (h *pollHandle) Done() <-chan struct{} { return h.done }
func (h *pollHandle) Result() Result        { <-h.done; return h.result }

func (h *pollHandle) poll() {
	for {
		if start, err := procStartTime(h.pid); err != nil || start != h.start {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(-h.pid, syscall.SIGKILL)
	if res, ok := readStatus(h.dir); ok {
		h.result = res
	} else {
		h.result = Result{ExitCode: -1, Err: fmt.Errorf("%w: its supervisor ended without recording how the task ended", ErrGone)}
	}
	close(h.done)
}

func (h *pollHandle) Stop(ctx context.Context, grace time.Duration) error {
	return stopGroup(ctx, h.pid, h.done, grace)
}

// waitBounded waits for the task, and then at most a few seconds for its
// output to drain: a background process the task left behind may hold the
// pipe open (it is killed with the process group right after).
func waitBounded(cmd *exec.Cmd) error {
	cmd.WaitDelay = 3 * time.Second
	err := cmd.Wait()
	if errors.Is(err, exec.ErrWaitDelay) {
		return nil // the task itself exited 0; only the pipe lingered
	}
	return err
}
