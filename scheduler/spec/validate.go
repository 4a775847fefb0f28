package spec

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// FieldError is one problem with one field of a spec.
type FieldError struct {
	Path string `json:"path"`
	Msg  string `json:"message"`
}

func (e FieldError) Error() string { return e.Path + ": " + e.Msg }

// Errors is every problem found in a spec, in field order.
type Errors []FieldError

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// MilliPerGPU is one whole GPU in resources.gpuMilli's unit.
const MilliPerGPU = 1000

// Limits on what one spec may ask for.
const (
	MaxReplicas       = 4096
	MaxGPUsPerReplica = 64
	MaxPriority       = 1000
	DefaultPriority   = 50
	MaxRestarts       = 100
	// MaxRuntimeLimit bounds spec.maxRuntime (a year).
	MaxRuntimeLimit    = 365 * 24 * time.Hour
	DefaultNamespace   = "default"
	DefaultQueue       = "default"
	defaultCPU         = Quantity("1")
	defaultMemory      = Quantity("1Gi")
	defaultNVLink      = PrefPreferred
	defaultRDMA        = PrefPreferred
	defaultRestartWait = Duration(10 * time.Second)
)

// ReservedEnv are the variables Ark sets in every task; a spec may not set
// them. Every ARK_* name is reserved as well (see IsReservedEnv), so that a
// variable Ark adds later cannot be pre-empted by a spec written today.
var ReservedEnv = []string{
	"ARK_JOB_ID", "ARK_ALLOC_ID", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "NODE_RANK",
	"MASTER_ADDR", "MASTER_PORT", "CUDA_VISIBLE_DEVICES", "ARK_CHECKPOINT_URI",
	"ARK_RESTART_COUNT", "NCCL_IB_HCA", "NCCL_SOCKET_IFNAME", "ARK_AGENT_ADDR", "ARK_TASK_TOKEN", "ARK_NODE_ADDR", "ARK_PORT",
	"ARK_GPU_MILLI", "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT",
}

var (
	labelRE  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// canonical makes empty lists and maps nil. JSON (omitempty) writes an
// empty list and none alike, so without it a spec read back from its JSON
// form (the API's answers, the Raft log) differs from the one submitted:
// `adapters: []` came back as no adapters (FuzzDecode).
func (t *Task) canonical() {
	if t.Exec != nil && len(t.Exec.Env) == 0 {
		t.Exec.Env = nil
	}
	b := t.Builtin
	if b == nil {
		return
	}
	if len(b.Adapters) == 0 {
		b.Adapters = nil
	}
	if len(b.Rules) == 0 {
		b.Rules = nil
	}
	for i := range b.Rules {
		if len(b.Rules[i].Models) == 0 {
			b.Rules[i].Models = nil
		}
		if len(b.Rules[i].Keywords) == 0 {
			b.Rules[i].Keywords = nil
		}
	}
	if b.LoRA != nil && len(b.LoRA.Targets) == 0 {
		b.LoRA.Targets = nil
	}
}

// Default fills in the fields a user may leave out.
func (j *Job) Default() {
	if j.Namespace == "" {
		j.Namespace = DefaultNamespace
	}
	if j.Queue == "" {
		j.Queue = DefaultQueue
	}
	if j.Priority == 0 {
		j.Priority = DefaultPriority
	}
	if j.Replicas == 0 {
		j.Replicas = 1
	}
	if j.Resources.GPUs == 0 && j.Resources.GPUMilli > 0 {
		j.Resources.GPUs = 1 // a share of one GPU
	}
	if j.Resources.CPU == "" {
		j.Resources.CPU = defaultCPU
	}
	if j.Resources.Memory == "" {
		j.Resources.Memory = defaultMemory
	}
	if j.Topology.NVLink == "" {
		j.Topology.NVLink = defaultNVLink
	}
	if j.Topology.RDMA == "" {
		j.Topology.RDMA = defaultRDMA
	}
	if j.Checkpoint.Store == "" {
		j.Checkpoint.Store = "default"
	}
	if j.Restart.Backoff == 0 {
		j.Restart.Backoff = defaultRestartWait
	}
	if j.Task.Health != nil {
		j.Task.Health.defaults()
	}
	j.Task.canonical()
	if j.Kind == KindInference {
		if j.Task.ShutdownDelay == 0 {
			j.Task.ShutdownDelay = DefaultShutdownDelay
		}
		if j.Update != nil {
			j.Update.defaults()
		}
		if j.Autoscale != nil {
			j.Autoscale.defaults()
		}
	}
}

// Validate reports every problem in a defaulted spec, each with its field
// path. It returns nil or an Errors.
func (j *Job) Validate() error {
	var es Errors
	add := func(path, format string, args ...any) {
		es = append(es, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	label := func(path, v string, required bool) {
		switch {
		case v == "" && required:
			add(path, "is required")
		case v == "":
		case len(v) > 63:
			add(path, "must be at most 63 characters, got %d", len(v))
		case !labelRE.MatchString(v):
			add(path, "must be lowercase letters, digits and '-', starting and ending with a letter or digit, got %q", v)
		}
	}
	label("name", j.Name, true)
	label("namespace", j.Namespace, false)
	label("queue", j.Queue, false)

	switch j.Kind {
	case KindFinetune, KindEval, KindInference, KindBatch:
	case "":
		add("kind", "is required (one of finetune, eval, inference, batch)")
	default:
		add("kind", "must be one of finetune, eval, inference, batch, got %q", j.Kind)
	}
	if j.Priority < 0 || j.Priority > MaxPriority {
		add("priority", "must be between 0 and %d, got %d", MaxPriority, j.Priority)
	}
	validateHealth(j, add)
	validateUpdate(j, add)
	validateAutoscale(j, add)
	validateRateLimit(j, add)
	validateWeights(j, add)
	if j.Replicas == 0 && j.Kind == KindInference {
		// An inference service scaled to zero: no replicas until it is
		// scaled up.
	} else if j.Replicas == 0 && j.Kind != "" {
		add("replicas", "must be >= 1 for a %s job (0, scaled to zero, is for inference jobs only)", j.Kind)
	} else if j.Replicas < 1 {
		add("replicas", "must be >= 1, got %d", j.Replicas)
	} else if j.Replicas > MaxReplicas {
		add("replicas", "must be <= %d, got %d", MaxReplicas, j.Replicas)
	}

	r := j.Resources
	if r.GPUs < 1 {
		add("resources.gpus", "must be >= 1, got %d", r.GPUs)
	} else if r.GPUs > MaxGPUsPerReplica {
		add("resources.gpus", "must be <= %d per replica, got %d", MaxGPUsPerReplica, r.GPUs)
	}
	if r.GPUMilli < 0 || r.GPUMilli >= MilliPerGPU {
		add("resources.gpuMilli", "must be between 1 and %d (a share of one GPU in thousandths; ask for whole GPUs with resources.gpus), got %d", MilliPerGPU-1, r.GPUMilli)
	} else if r.GPUMilli > 0 && r.GPUs > 1 {
		add("resources.gpuMilli", "is a share of one GPU: resources.gpus must be 1 or left out, got %d (ask for whole GPUs or for a share, not both)", r.GPUs)
	}
	bytesField := func(path string, q Quantity) {
		if v, err := q.Bytes(); err != nil {
			add(path, "%v", err)
		} else if v < 0 {
			add(path, "must not be negative, got %s", q)
		}
	}
	bytesField("resources.gpuMemory", r.GPUMemory)
	if r.GPUModel != "" {
		for i, m := range strings.Split(r.GPUModel, ",") {
			if strings.TrimSpace(m) == "" {
				add("resources.gpuModel", "alternative %d of %q is empty (write models separated by commas: \"H100,H200\")", i+1, r.GPUModel)
			}
		}
	}
	bytesField("resources.memory", r.Memory)
	if v, err := r.CPU.Milli(); err != nil {
		add("resources.cpu", "%v", err)
	} else if v <= 0 {
		add("resources.cpu", "must be > 0, got %s", r.CPU)
	}

	pref := func(path, v string) {
		switch v {
		case PrefRequired, PrefPreferred, PrefNone:
		default:
			add(path, "must be one of required, preferred, none, got %q", v)
		}
	}
	pref("topology.nvlink", j.Topology.NVLink)
	pref("topology.rdma", j.Topology.RDMA)

	t := j.Task
	switch t.Driver {
	case DriverExec:
		if t.Exec == nil {
			add("task.exec", "is required when task.driver is exec")
		} else {
			if len(t.Exec.Command) == 0 {
				add("task.exec.command", "must name a program, got an empty list")
			} else if strings.TrimSpace(t.Exec.Command[0]) == "" {
				add("task.exec.command[0]", "must name a program, got %q", t.Exec.Command[0])
			}
			keys := make([]string, 0, len(t.Exec.Env))
			for k := range t.Exec.Env {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				switch {
				case !envKeyRE.MatchString(k):
					add("task.exec.env."+k, "is not a valid environment variable name")
				case IsReservedEnv(k):
					add("task.exec.env."+k, "is set by Ark for every task and cannot be overridden")
				}
			}
			if t.Exec.WorkDir != "" {
				if err := CheckWorkDir(t.Exec.WorkDir); err != nil {
					add("task.exec.workDir", "%v", err)
				}
			}
		}
		if t.Builtin != nil {
			add("task.builtin", "must be empty when task.driver is exec")
		}
	case DriverBuiltin:
		switch {
		case t.Builtin == nil:
			add("task.builtin", "is required when task.driver is builtin (model, data, ...)")
		case j.Kind == KindBatch:
			add("task.driver", "the builtin runtime runs finetune, eval and inference jobs, not batch; use exec")
		default:
			b := t.Builtin
			if strings.TrimSpace(b.Model) == "" && strings.TrimSpace(b.Base) == "" {
				// With a base, the base's own shape is the model (an
				// imported GPT-2 fits no builtin preset).
				add("task.builtin.model", "is required without a base (%s), or give task.builtin.base", strings.Join(BuiltinModels, ", "))
			}
			if strings.TrimSpace(b.Data) == "" && j.Kind != KindInference {
				add("task.builtin.data", "is required (a text file on the nodes)")
			}
			if j.Kind == KindEval && strings.TrimSpace(b.Base) == "" {
				add("task.builtin.base", "is required for eval jobs (the checkpoint to evaluate)")
			}
			if j.Kind == KindInference && strings.TrimSpace(b.Base) == "" {
				add("task.builtin.base", "is required for inference jobs (the checkpoint to serve)")
			}
			if b.Steps < 0 {
				add("task.builtin.steps", "must be >= 0, got %d", b.Steps)
			}
			if b.Batch < 0 {
				add("task.builtin.batch", "must be >= 0, got %d", b.Batch)
			}
			if b.LR < 0 || b.LR > 1 {
				add("task.builtin.lr", "must be between 0 and 1, got %g", b.LR)
			}
			validateLoRA(j.Kind, b, add)
			validateBuiltinFields(b, add)
		}
		if t.Exec != nil {
			add("task.exec", "must be empty when task.driver is builtin")
		}
	case "":
		add("task.driver", "is required (exec or builtin)")
	default:
		add("task.driver", "must be exec or builtin, got %q", t.Driver)
	}

	if j.Checkpoint.Every < 0 {
		add("checkpoint.every", "must be >= 0, got %d", j.Checkpoint.Every)
	}
	if j.Checkpoint.Keep < 0 {
		add("checkpoint.keep", "must be >= 0, got %d", j.Checkpoint.Keep)
	}
	label("checkpoint.store", j.Checkpoint.Store, false)
	if j.Restart.MaxRestarts < 0 || j.Restart.MaxRestarts > MaxRestarts {
		add("restart.maxRestarts", "must be between 0 and %d, got %d", MaxRestarts, j.Restart.MaxRestarts)
	}
	if j.Restart.Backoff < 0 {
		add("restart.backoff", "must not be negative, got %s", time.Duration(j.Restart.Backoff))
	}
	if j.MaxRuntime < 0 || time.Duration(j.MaxRuntime) > MaxRuntimeLimit {
		add("maxRuntime", "must be between 0 (unbounded) and %s, got %s", MaxRuntimeLimit, time.Duration(j.MaxRuntime))
	} else if j.MaxRuntime > 0 && time.Duration(j.MaxRuntime) < time.Second {
		add("maxRuntime", "must be at least 1s when set, got %s", time.Duration(j.MaxRuntime))
	}
	validateCatalog(j, add)
	if len(es) == 0 {
		return nil
	}
	return es
}

// IsReservedEnv reports whether a spec may not set the variable k: one Ark
// sets in every task, any ARK_* (Ark's own, the agent's token among them)
// or a CUDA MPS control variable (a task must not escape its GPU share).
func IsReservedEnv(k string) bool {
	if strings.HasPrefix(k, "ARK_") || strings.HasPrefix(k, "CUDA_MPS_") {
		return true
	}
	for _, r := range ReservedEnv {
		if r == k {
			return true
		}
	}
	return false
}

// CheckWorkDir says why a task's workDir is refused: it must be a relative
// path inside the allocation's directory. An absolute path or any ".."
// component is refused, never cleaned: the agent creates the directory and
// gives it to the task's user, so a path that could leave the allocation's
// directory would hand a system directory to the tenant.
func CheckWorkDir(dir string) error {
	switch {
	case dir == "":
		return nil
	case strings.HasPrefix(dir, "/"):
		return fmt.Errorf("must be relative to the allocation's directory, got the absolute path %q", dir)
	case strings.ContainsRune(dir, 0):
		return fmt.Errorf("must not contain a NUL byte")
	case len(dir) > 1024:
		return fmt.Errorf("must be at most 1024 bytes, got %d", len(dir))
	}
	for _, part := range strings.Split(dir, "/") {
		if part == ".." {
			return fmt.Errorf("must stay inside the allocation's directory: %q has a '..' component", dir)
		}
	}
	return nil
}
