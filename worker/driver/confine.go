package driver

import (
	"path/filepath"
	"strings"

	"github.com/ark-sched/ark/scheduler/spec"
)

// A task is confined at exec by a small init: the agent's executable run a
// third time (after the agent and the supervisor), with ARK_TASKINIT set.
// The supervisor starts it in new mount, PID, IPC and UTS namespaces; as
// PID 1 there, and still root, it makes the mounts private, mounts a fresh
// /proc and a private /tmp, hides the GPU device nodes that are not the
// allocation's, drops every capability from the bounding set, sets
// no_new_privs, confines the file system with Landlock and loads a seccomp
// filter; then it starts the task as the task user, reaps what the task
// leaves behind and reports how the task ended to the supervisor (see
// confine_linux.go). Each step the kernel lacks is skipped and named in the
// allocation's sandbox.json, and ProbeSandbox names it for the agent's log.

const taskInitEnv = "ARK_TASKINIT"

// sandboxFile, in an allocation's directory, records what the init applied.
const sandboxFile = "sandbox.json"

// confineSpec is what the init needs beyond the task's command.
type confineSpec struct {
	// Namespaces is set when the supervisor starts the init in its own
	// mount, PID, IPC and UTS namespaces (it can: it runs as root).
	Namespaces bool `json:"namespaces,omitempty"`
	// WorkRoot is the allocation's work directory (ALLOC/work), the one
	// tree the task may write besides /tmp and /dev/shm; Cwd is where it
	// starts (WorkRoot or a spec's workDir below it).
	WorkRoot string `json:"workRoot"`
	Cwd      string `json:"cwd"`
	// Read and Write are further paths the task may read (its program,
	// the data and base models its spec names) and write (its job's
	// checkpoint store in a file:// store).
	Read  []string `json:"read,omitempty"`
	Write []string `json:"write,omitempty"`
}

// SandboxReport is what confined a task: written by its init to the
// allocation's sandbox.json. Missing names, one line each, every
// protection that could not be applied and why.
type SandboxReport struct {
	Namespaces  []string `json:"namespaces"`
	FreshProc   bool     `json:"freshProc"`
	PrivateTmp  bool     `json:"privateTmp"`
	HiddenGPUs  []string `json:"hiddenGPUs,omitempty"`
	CapsDropped bool     `json:"capsDropped"`
	NoNewPrivs  bool     `json:"noNewPrivs"`
	// Landlock is the kernel's Landlock ABI version the rules were
	// enforced with, 0 when none.
	Landlock int      `json:"landlock"`
	Seccomp  bool     `json:"seccomp"`
	UID      int      `json:"uid"`
	Missing  []string `json:"missing,omitempty"`
}

// confinePaths works out what a task may read and write besides its work
// directory: its program's directory (and the tree above a bin/ one, where
// a virtualenv keeps its libraries), the local paths of a builtin task's
// base, data and adapters (spec.ReadRoots), and its job's directory in a
// local checkpoint store (ARK_CHECKPOINT_URI) with the namespace's
// directory above it, where the store stages its writes.
func confinePaths(cfg TaskConfig, program string) (read, write []string) {
	if filepath.IsAbs(program) {
		dir := filepath.Dir(program)
		read = append(read, dir)
		if filepath.Base(dir) == "bin" {
			read = append(read, filepath.Dir(dir))
		}
	}
	shared := ""
	for _, kv := range cfg.Env {
		if uri, ok := strings.CutPrefix(kv, "ARK_CHECKPOINT_URI="); ok {
			if p := spec.LocalPath(uri); p != "" {
				write = append(write, filepath.Dir(p))
			}
			shared = spec.SharedCheckpointDir(uri)
		}
		// The namespace's checkpoint key, which the agent puts in the
		// allocation's directory (outside work/) for the task to read.
		if p, ok := strings.CutPrefix(kv, "ARK_CHECKPOINT_KEY_FILE="); ok && filepath.IsAbs(p) {
			read = append(read, p)
		}
	}
	// The rule of what a builtin task reads is the scheduler's too: it
	// applies a change of adapters in place only within these paths.
	read = append(read, spec.ReadRoots(cfg.Task.Builtin, shared)...)
	return read, write
}
