package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
)

// MPSControlName is NVIDIA's MPS control program (Debian: nvidia-cuda-mps).
const MPSControlName = "nvidia-cuda-mps-control"

// mpsTimeout bounds each run of the control program and the wait for a
// daemon's control pipe to appear or go.
const mpsTimeout = 10 * time.Second

// errNoMPS: the node has no MPS control program; shares run unenforced and
// their allocations say so (shareUnenforced).
var errNoMPS = errors.New("no " + MPSControlName + " on this node")

// mps runs one CUDA MPS control daemon per GPU that holds shares, so the
// CUDA_MPS_ACTIVE_THREAD_PERCENTAGE and CUDA_MPS_PINNED_DEVICE_MEM_LIMIT a
// share's task is given (shareEnv) are enforced: the daemon is started
// before the GPU's first share starts and told to quit when its last share
// ends. Each GPU's daemon has its own pipe and log directories under
// DataDir/mps/<GPU UUID>/ and sees only its GPU (CUDA_VISIBLE_DEVICES), and
// its clients find it through CUDA_MPS_PIPE_DIRECTORY in their environment.
// A nil *mps (agents built without New, fake GPUs) runs nothing.
type mps struct {
	bin  string // the control program's path; "" when the node has none
	root string
	log  *zap.Logger

	mu     sync.Mutex
	gpus   map[string]*mpsGPU // by GPU UUID
	allocs map[string]mpsUse  // by allocation ID
}

type mpsGPU struct {
	pipe, logDir string
	holders      map[string]bool // allocation IDs
}

// mpsUse is what became of one share's request for MPS.
type mpsUse struct {
	uuid string // "" when no daemon serves it
	err  error
}

// newMPS finds the control program: bin, or MPSControlName on PATH when
// bin is empty. It starts nothing: daemons start with the first share.
func newMPS(bin, dataDir string, log *zap.Logger) *mps {
	if bin == "" {
		bin, _ = exec.LookPath(MPSControlName)
	}
	return &mps{bin: bin, root: filepath.Join(dataDir, "mps"), log: log,
		gpus: map[string]*mpsGPU{}, allocs: map[string]mpsUse{}}
}

// uuidRE is what a GPU UUID from NVML looks like; it names a directory.
var uuidRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]*$`)

// acquire makes sure the daemon of the share's GPU runs and counts the
// allocation as one of its holders; it returns the pipe directory the task
// must be given. An allocation of a whole GPU, or of fake GPUs, gets "".
func (m *mps) acquire(al *api.Allocation, uuids []string) (pipe string) {
	if m == nil || al.GPUMilli <= 0 || len(uuids) != 1 || uuids[0] == "" {
		return ""
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	uuid := uuids[0]
	if m.bin == "" {
		m.allocs[al.ID] = mpsUse{err: errNoMPS}
		return ""
	}
	g, err := m.startLocked(uuid)
	if err != nil {
		m.log.Warn("CUDA MPS daemon did not start; the share runs without enforced limits",
			zap.String("alloc", al.ID), zap.String("gpu", uuid), zap.Error(err))
		m.allocs[al.ID] = mpsUse{err: err}
		return ""
	}
	g.holders[al.ID] = true
	m.allocs[al.ID] = mpsUse{uuid: uuid}
	return g.pipe
}

// startLocked returns the GPU's daemon, starting it when none runs. A
// daemon whose control pipe exists already was started by an earlier run of
// the agent for shares that still run (re-attached): it is adopted.
func (m *mps) startLocked(uuid string) (*mpsGPU, error) {
	if g := m.gpus[uuid]; g != nil {
		return g, nil
	}
	if !uuidRE.MatchString(uuid) {
		return nil, fmt.Errorf("mps: GPU UUID %q is not a plain name", uuid)
	}
	g := &mpsGPU{pipe: filepath.Join(m.root, uuid, "pipe"), logDir: filepath.Join(m.root, uuid, "log"), holders: map[string]bool{}}
	for _, d := range []string{g.pipe, g.logDir} {
		// Tasks run as another user and connect through the pipe directory.
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("mps: %w", err)
		}
	}
	control := filepath.Join(g.pipe, "control")
	if _, err := os.Stat(control); err == nil {
		m.log.Info("adopted the CUDA MPS daemon an earlier agent started", zap.String("gpu", uuid), zap.String("pipe", g.pipe))
		m.gpus[uuid] = g
		return g, nil
	}
	if out, err := m.run(g, uuid, "", "-d"); err != nil {
		return nil, fmt.Errorf("mps: start %s -d for %s: %w%s", m.bin, uuid, err, detail(out, g.logDir))
	}
	if !waitPath(control, true) {
		return nil, fmt.Errorf("mps: %s -d for %s exited but no control pipe appeared at %s within %s%s",
			m.bin, uuid, control, mpsTimeout, detail(nil, g.logDir))
	}
	m.log.Info("started a CUDA MPS control daemon", zap.String("gpu", uuid), zap.String("pipe", g.pipe), zap.String("log", g.logDir))
	m.gpus[uuid] = g
	return g, nil
}

// release forgets the allocation; the daemon of a GPU whose last share it
// was is told to quit.
func (m *mps) release(allocID string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	use, ok := m.allocs[allocID]
	delete(m.allocs, allocID)
	g := m.gpus[use.uuid]
	if !ok || g == nil {
		return
	}
	delete(g.holders, allocID)
	if len(g.holders) == 0 {
		m.quitLocked(use.uuid, g)
	}
}

// quitLocked tells a GPU's daemon to quit and waits for its control pipe to
// go.
func (m *mps) quitLocked(uuid string, g *mpsGPU) {
	delete(m.gpus, uuid)
	if out, err := m.run(g, uuid, "quit\n"); err != nil {
		m.log.Warn("CUDA MPS daemon did not take quit", zap.String("gpu", uuid), zap.Error(err), zap.String("output", string(out)))
		return
	}
	if !waitPath(filepath.Join(g.pipe, "control"), false) {
		m.log.Warn("CUDA MPS daemon still has its control pipe after quit", zap.String("gpu", uuid), zap.String("pipe", g.pipe))
		return
	}
	m.log.Info("stopped the CUDA MPS control daemon (its last share ended)", zap.String("gpu", uuid))
}

// sweep stops daemons an earlier run of the agent left behind for GPUs
// that hold no share now. The agent calls it once, after re-attaching to
// the tasks that still run (whose daemons acquire adopted).
func (m *mps) sweep() {
	if m == nil || m.bin == "" {
		return
	}
	entries, err := os.ReadDir(m.root)
	if err != nil {
		return // no daemon was ever started here
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range entries {
		uuid := e.Name()
		if !e.IsDir() || m.gpus[uuid] != nil || !uuidRE.MatchString(uuid) {
			continue
		}
		g := &mpsGPU{pipe: filepath.Join(m.root, uuid, "pipe"), logDir: filepath.Join(m.root, uuid, "log")}
		if _, err := os.Stat(filepath.Join(g.pipe, "control")); err == nil {
			m.log.Info("stopping a CUDA MPS daemon an earlier agent left for a GPU without shares", zap.String("gpu", uuid))
			m.quitLocked(uuid, g)
		}
	}
}

// enforced says whether the share's limits hold: handled is false when
// this agent did not try (no MPS control program, or no share), and then
// why is empty; otherwise why is "" when a daemon serves the share, or
// says why none does.
func (m *mps) enforced(al *api.Allocation) (why string, handled bool) {
	if m == nil {
		return "", false
	}
	m.mu.Lock()
	use, ok := m.allocs[al.ID]
	m.mu.Unlock()
	switch {
	case !ok || errors.Is(use.err, errNoMPS):
		return "", false
	case use.err != nil:
		return fmt.Sprintf("GPU share of %dm without CUDA MPS: %v: its compute and memory limits are not enforced", al.GPUMilli, use.err), true
	}
	return "", true
}

// run runs the control program for one GPU's daemon with stdin.
func (m *mps) run(g *mpsGPU, uuid, stdin string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), mpsTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, m.bin, args...)
	cmd.Env = []string{
		"PATH=" + defaultPath,
		"CUDA_MPS_PIPE_DIRECTORY=" + g.pipe,
		"CUDA_MPS_LOG_DIRECTORY=" + g.logDir,
		"CUDA_VISIBLE_DEVICES=" + uuid,
	}
	cmd.Stdin = strings.NewReader(stdin)
	// -d forks the daemon, which keeps stdout open: a pipe would make Wait
	// wait for the daemon. A file does not.
	if err := os.MkdirAll(g.logDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(g.logDir, "control-*.out")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	out, _ := os.ReadFile(f.Name())
	return out, err
}

// detail is the control program's output and the tail of the daemon's log,
// for an error message.
func detail(out []byte, logDir string) string {
	s := ""
	if o := strings.TrimSpace(string(out)); o != "" {
		s += ": " + o
	}
	if b, err := os.ReadFile(filepath.Join(logDir, "control.log")); err == nil && len(b) > 0 {
		if len(b) > 512 {
			b = b[len(b)-512:]
		}
		s += " (" + filepath.Join(logDir, "control.log") + ": " + strings.TrimSpace(string(b)) + ")"
	}
	return s
}

// waitPath waits up to mpsTimeout for path to exist (or to be gone).
func waitPath(path string, exist bool) bool {
	deadline := time.Now().Add(mpsTimeout)
	for {
		_, err := os.Stat(path)
		if (err == nil) == exist {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// withEnv sets k=v in a KEY=VALUE environment, replacing any value the
// spec gave it (a task must reach the daemon Ark started for its share).
func withEnv(env []string, k, v string) []string {
	if v == "" {
		return env
	}
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, k+"=") {
			out = append(out, kv)
		}
	}
	return append(out, k+"="+v)
}

// shareGPUUUIDs are the UUIDs of a share's GPU on real hardware, which name
// its daemon; none on fake GPUs, where there is nothing to run MPS on.
func (a *Agent) shareGPUUUIDs(al *api.Allocation) []string {
	if a.inv.Fake || al.GPUMilli <= 0 {
		return nil
	}
	var out []string
	for _, g := range al.GPUs {
		if g >= 0 && g < len(a.inv.GPUs) {
			out = append(out, a.inv.GPUs[g].UUID)
		}
	}
	return out
}
