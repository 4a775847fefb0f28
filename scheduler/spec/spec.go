package spec

// Kinds of job.
const (
	KindFinetune  = "finetune"
	KindEval      = "eval"
	KindInference = "inference"
	KindBatch     = "batch"
)

// Task drivers.
const (
	DriverExec    = "exec"
	DriverBuiltin = "builtin"
)

// Topology preferences.
const (
	PrefRequired  = "required"
	PrefPreferred = "preferred"
	PrefNone      = "none"
)

// Job is a job spec as a user writes it.
type Job struct {
	// Name is a short DNS-style label; the server derives the job ID from it.
	Name string `json:"name"`
	// Namespace is the tenant the job belongs to. Defaults to "default".
	Namespace string `json:"namespace,omitempty"`
	// Queue holds quotas and fair-share weights. Defaults to "default".
	Queue string `json:"queue,omitempty"`
	// Kind is one of finetune, eval, inference, batch.
	Kind string `json:"kind"`
	// Priority decides preemption: a pending job that fits nowhere evicts
	// lower-priority work. Under the servers' --queue-order submission or
	// shortest it also orders pending work, higher first; the default
	// (shortest-all) orders by declared maxRuntime instead. 0..1000,
	// default 50.
	Priority int `json:"priority,omitempty"`
	// Replicas is the number of ranks (finetune, eval, batch) or serving
	// replicas (inference). Defaults to 1 when left out; an explicit 0 is
	// an inference service scaled to zero (and an error for other kinds).
	// It is always written out, so that an explicit 0 survives the trip
	// from the CLI to the server.
	Replicas int `json:"replicas"`
	// Resources are asked per replica.
	Resources Resources `json:"resources"`
	// Topology holds placement preferences for multi-replica jobs.
	Topology Topology `json:"topology,omitempty"`
	// Task says what each replica runs.
	Task Task `json:"task"`
	// Checkpoint says where and how often the task checkpoints.
	Checkpoint Checkpoint `json:"checkpoint,omitempty"`
	// Restart bounds automatic restarts.
	Restart Restart `json:"restart,omitempty"`
	// MaxRuntime bounds how long the job may run ("2h"): past it the job
	// is cancelled. The scheduler uses it to backfill: a job with a
	// maxRuntime may start on nodes held for a waiting gang when it ends
	// before the gang could start. 0 is unbounded.
	MaxRuntime Duration `json:"maxRuntime,omitempty"`
	// Output registers a finetune job's result in the model catalog.
	Output *Output `json:"output,omitempty"`
	// Update is how a service rolls out a new version of its spec
	// (update.go); inference jobs only.
	Update *Update `json:"update,omitempty"`
	// Autoscale sets a service's replica count from its load
	// (autoscale.go); inference jobs only.
	Autoscale *Autoscale `json:"autoscale,omitempty"`
}

// Output says where a finetune job's result goes in the model catalog:
// when the job succeeds its last checkpoint becomes a new version of
// Model in the job's namespace (an adapter when the job trains LoRA),
// with its lineage (parent, data, method, final loss).
type Output struct {
	Model       string `json:"model"`
	Description string `json:"description,omitempty"`
}

// Resources are what one replica needs.
type Resources struct {
	// GPUs is the number of whole GPUs per replica; with GPUMilli it is 1
	// (or left out): the one GPU the share is taken from.
	GPUs int `json:"gpus"`
	// GPUMilli asks for a share of one GPU instead of whole GPUs, in
	// thousandths (1..999: 500 is half a GPU). Shares of one GPU run side
	// by side (the agent sets up CUDA MPS limits for them); the shares on a
	// GPU never add up to more than 1000.
	GPUMilli int `json:"gpuMilli,omitempty"`
	// GPUMemory is, for whole GPUs, the minimum memory of each GPU
	// ("20Gi"). For a share (GPUMilli) it is the GPU memory the share
	// holds, by default its proportion of the chosen GPU's memory: the
	// shares on one GPU must fit in its memory together.
	GPUMemory Quantity `json:"gpuMemory,omitempty"`
	// GPUModel restricts the GPU model: one ("H200") or alternatives
	// separated by commas ("H100,H200": either will do); empty accepts any.
	GPUModel string `json:"gpuModel,omitempty"`
	// CPU in cores ("1", "500m"). Defaults to 1.
	CPU Quantity `json:"cpu,omitempty"`
	// Memory of the host ("2Gi"). Defaults to 1Gi.
	Memory Quantity `json:"memory,omitempty"`
}

// Topology holds placement preferences.
type Topology struct {
	// SameNode requires all replicas on one node.
	SameNode bool `json:"sameNode,omitempty"`
	// NVLink is required, preferred (default) or none.
	NVLink string `json:"nvlink,omitempty"`
	// RDMA is required, preferred (default) or none.
	RDMA string `json:"rdma,omitempty"`
}

// Task says what a replica runs.
type Task struct {
	// Driver is exec or builtin.
	Driver string `json:"driver"`
	// Exec is the command for the exec driver.
	Exec *ExecTask `json:"exec,omitempty"`
	// Builtin configures Ark's builtin trainer, evaluator or server.
	Builtin *BuiltinTask `json:"builtin,omitempty"`
	// Health checks the replicas of an inference job (health.go).
	Health *Health `json:"health,omitempty"`
	// ShutdownDelay is how long a service replica the scheduler stops
	// keeps running before its task is signalled (Nomad's shutdown_delay):
	// the servers stop routing to it at once, and requests already sent
	// finish. Inference jobs default to 2s.
	ShutdownDelay Duration `json:"shutdownDelay,omitempty"`
}

// ExecTask runs any command, such as torchrun.
type ExecTask struct {
	// Command is the program and its arguments; the program is looked up in
	// the agent's PATH.
	Command []string `json:"command"`
	// Env is added to the task's environment.
	Env map[string]string `json:"env,omitempty"`
	// WorkDir is the working directory; defaults to the allocation's own
	// directory on the node.
	WorkDir string `json:"workDir,omitempty"`
}

// BuiltinTask configures Ark's builtin runtime.
type BuiltinTask struct {
	Model string  `json:"model"`
	Base  string  `json:"base,omitempty"`
	Data  string  `json:"data,omitempty"`
	Steps int     `json:"steps,omitempty"`
	Batch int     `json:"batch,omitempty"`
	LR    float64 `json:"lr,omitempty"`
	// LoRA, on a finetune job, trains a low-rank adapter on the frozen
	// Base instead of every weight; the checkpoints hold the adapter.
	LoRA *LoRA `json:"lora,omitempty"`
	// Adapters, on an inference job, are LoRA adapters served with the
	// base; a request's model field picks one by name.
	Adapters []Adapter `json:"adapters,omitempty"`
	// Rules, on an inference job, change what the model is asked or says
	// without retraining it (rules.go).
	Rules []Rule `json:"rules,omitempty"`
	// RateLimit bounds each served model's requests (inference;
	// ratelimit.go).
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
	// Weights, on an inference job, is how the server keeps the base
	// model's weights: float32 (default) or bf16 (weights.go).
	Weights string `json:"weights,omitempty"`
}

// LoRA is a low-rank adapter's shape: rank r, scale alpha/r, and the
// layers it adapts (attn: the attention projections, mlp: the MLP's).
type LoRA struct {
	Rank    int      `json:"rank"`
	Alpha   float64  `json:"alpha,omitempty"`   // default 2·rank
	Targets []string `json:"targets,omitempty"` // default [attn, mlp]
}

// Adapter is a served LoRA adapter: the name requests use and its
// checkpoint (STORE_URI/JOB/STEP, or STORE_URI/JOB for the newest).
type Adapter struct {
	Name string `json:"name"`
	URI  string `json:"uri"`
	// Pinned keeps it in the replicas' host memory (never evicted).
	Pinned bool `json:"pinned,omitempty"`
}

// Checkpoint says where and how often a task checkpoints.
type Checkpoint struct {
	// Store names an object store configured on the servers; "default".
	Store string `json:"store,omitempty"`
	// Every is the number of steps between checkpoints; 0 disables them.
	Every int `json:"every,omitempty"`
	// Keep is the number of complete checkpoints kept.
	Keep int `json:"keep,omitempty"`
}

// Restart bounds automatic restarts of a failed job.
type Restart struct {
	MaxRestarts int      `json:"maxRestarts,omitempty"`
	Backoff     Duration `json:"backoff,omitempty"`
}

// GPUsTotal is the number of GPUs the job holds (whole or a share of)
// across all replicas.
func (j *Job) GPUsTotal() int { return j.Replicas * j.Resources.GPUs }

// Shared reports whether each replica asks for a share of one GPU.
func (r Resources) Shared() bool { return r.GPUMilli > 0 }

// GPUMilliTotal is the GPU the job needs across all replicas in
// thousandths of a GPU: a share counts as its fraction.
func (j *Job) GPUMilliTotal() int64 {
	if j.Resources.Shared() {
		return int64(j.Replicas) * int64(j.Resources.GPUMilli)
	}
	return int64(j.Replicas) * int64(j.Resources.GPUs) * 1000
}
