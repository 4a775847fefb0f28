package api

import (
	"slices"
	"time"

	"github.com/ark-sched/ark/scheduler/spec"
)

// Job statuses.
const (
	JobPending   = "pending"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
)

// Allocation statuses, as reported by the agent (or "lost" when its node is).
const (
	AllocPending   = "pending"
	AllocRunning   = "running"
	AllocSucceeded = "succeeded"
	AllocFailed    = "failed"
	AllocLost      = "lost"
)

// Terminal allocation statuses of a task the scheduler stopped, by why:
// they are no failure of the task's own. The command that asked the stop
// names the status (Allocation.StopCause); when the agent reports the
// stopped task's end, the allocation takes it instead of failed.
const (
	// AllocCancelled: its job was cancelled.
	AllocCancelled = "cancelled"
	// AllocPreempted: a job of higher priority (or a queue reclaiming its
	// quota) evicted it.
	AllocPreempted = "preempted"
	// AllocDrained: it was moved off a draining node.
	AllocDrained = "drained"
	// AllocStopped: the scheduler stopped it for another reason (another
	// rank of its gang ended, its service changed).
	AllocStopped = "stopped"
)

// StopCauses are the statuses a stop may name (Allocation.StopCause).
var StopCauses = map[string]bool{AllocCancelled: true, AllocPreempted: true, AllocDrained: true, AllocStopped: true}

// Desired allocation states, as set by the scheduler.
const (
	DesiredRun  = "run"
	DesiredStop = "stop"
)

// Node statuses.
const (
	NodeReady = "ready"
	NodeDown  = "down"
)

// Job is a submitted job and where it stands.
type Job struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Queue     string `json:"queue"`
	Kind      string `json:"kind"`
	Priority  int    `json:"priority"`
	// Status is pending, running, succeeded, failed or cancelled.
	Status string `json:"status"`
	// Reason says why a job is pending, failed or cancelled.
	Reason string `json:"reason,omitempty"`
	// Reasons are why a pending job waits, one per rule, as the scheduler
	// counted them (Reason is their text).
	Reasons []Reason `json:"reasons,omitempty"`
	// CannotFit is set on a pending job that no ready node could take even
	// if the cluster were idle (Reason says what is missing): waiting for
	// it is waiting for nodes yet to join.
	CannotFit bool `json:"cannotFit,omitempty"`
	// Spec is the defaulted spec the job was submitted with.
	Spec spec.Job `json:"spec"`
	// Allocations is filled in API answers; the store keeps them apart.
	Allocations []*Allocation `json:"allocations"`
	// RestartCount is how many times the job was restarted after a rank
	// failed or was lost (up to spec.restart.maxRestarts).
	RestartCount int `json:"restartCount"`
	// Migrations counts restarts that moved the job off a draining node;
	// they are in RestartCount but do not use up maxRestarts.
	Migrations int `json:"migrations,omitempty"`
	// Preemptions counts restarts forced by a higher-priority job (or a
	// queue reclaiming its quota); they are in RestartCount but do not use
	// up maxRestarts.
	Preemptions int `json:"preemptions,omitempty"`
	// LastPreemption says what evicted the job last ("preempted by job
	// x-1 (priority 90 over 10)"); Reason moves on, this stays.
	LastPreemption string `json:"lastPreemption,omitempty"`
	// Preempting lists the jobs this pending job evicted to make room; it
	// is placed before other pending work once their allocations stop.
	Preempting []string `json:"preempting,omitempty"`
	// HeldNodes are the nodes this pending job's preemption freed, closed
	// to other work until it is placed or HoldUntil passes.
	HeldNodes []string   `json:"heldNodes,omitempty"`
	HoldUntil *time.Time `json:"holdUntil,omitempty"`
	// RestartAfter holds a restarting job back until its backoff has passed.
	RestartAfter *time.Time `json:"restartAfter,omitempty"`
	// SubmitToken is the submitter's idempotency key, scoped to the job's
	// namespace ("NAMESPACE/KEY"; keys of other namespaces never match): a submission
	// retried with the same key (after a lost answer or a failover)
	// returns the job it created the first time instead of a second job.
	SubmitToken string `json:"submitToken,omitempty"`
	// Service is set by the leader at submission on an inference job: its
	// replicas live, fail and are replaced one by one (service.go). The
	// FSM reads this flag, never the kind, so that jobs logged before
	// services existed replay as the gangs they were.
	Service bool `json:"service,omitempty"`
	// ServiceReplicas is each service replica's restart record, by rank.
	ServiceReplicas []ServiceReplica `json:"serviceReplicas,omitempty"`
	// Models are the catalog references the spec named (model://NAME@V)
	// and the versions they resolved to at submission; the spec holds
	// the resolved URIs.
	Models []ModelRef `json:"models,omitempty"`
	// Output is the catalog version a succeeded job's result was
	// registered as ("NAME@V"; spec.output.model).
	Output string `json:"output,omitempty"`
	// EvalsRecorded is set on an eval job once the leader has filed its
	// results in the catalog.
	EvalsRecorded bool `json:"evalsRecorded,omitempty"`
	// Version is the spec's version: 0 at submission, one more at each
	// update (`ark job history` lists them). StableVersion is the newest
	// one that rolled out to every replica.
	Version       int `json:"version,omitempty"`
	StableVersion int `json:"stableVersion,omitempty"`
	// Deployment is a service's latest rollout of a new version.
	Deployment *Deployment `json:"deployment,omitempty"`
	// LastScale is the autoscaler's latest change of the replica count.
	LastScale *ScaleEvent `json:"lastScale,omitempty"`
	// Events are what happened to the job, oldest first: the last
	// MaxJobEvents, recorded by the state machine as it applies each
	// change (job lists leave them out).
	Events []JobEvent `json:"events,omitempty"`

	SubmitTime  time.Time  `json:"submitTime"`
	StartTime   *time.Time `json:"startTime,omitempty"`
	EndTime     *time.Time `json:"endTime,omitempty"`
	CreateIndex uint64     `json:"createIndex"`
	ModifyIndex uint64     `json:"modifyIndex"`
}

// Terminal reports whether the job will change no more.
func (j *Job) Terminal() bool {
	switch j.Status {
	case JobSucceeded, JobFailed, JobCancelled:
		return true
	}
	return false
}

// Allocation is one replica (rank) of a job placed on one node.
type Allocation struct {
	ID    string `json:"id"`
	JobID string `json:"jobId"`
	// NodeID is the node's ID; Node is its name.
	NodeID string `json:"nodeId"`
	Node   string `json:"node"`
	// Namespace is the job's, filled in by the servers when an agent
	// lists its node's allocations (the label of the task's metrics);
	// the state's records do not hold it.
	Namespace string `json:"namespace,omitempty"`

	Rank      int `json:"rank"`
	WorldSize int `json:"worldSize"`
	// Attempt is the job's RestartCount when this allocation was placed:
	// 0 for the first run, 1 after the first restart, ...
	Attempt   int `json:"attempt"`
	NodeRank  int `json:"nodeRank"`
	LocalRank int `json:"localRank"`
	// LocalWorldSize is the number of the job's ranks on this node.
	LocalWorldSize int `json:"localWorldSize"`

	// GPUs are the indexes of the node's GPUs this allocation holds.
	GPUs []int `json:"gpus"`
	// GPUMilli is the share of its one GPU a shared allocation holds, in
	// thousandths (1..999); 0 means it holds its GPUs whole.
	GPUMilli int64 `json:"gpuMilli,omitempty"`
	// GPUMemoryBytes is the GPU memory a shared allocation holds on its
	// GPU (0: not limited); whole GPUs hold all their memory.
	GPUMemoryBytes int64 `json:"gpuMemoryBytes,omitempty"`
	CPUMilli       int64 `json:"cpuMilli"`
	MemoryBytes    int64 `json:"memoryBytes"`

	// MasterAddr and MasterPort are where rank 0 listens for rendezvous.
	MasterAddr string `json:"masterAddr"`
	MasterPort int    `json:"masterPort"`
	// Port is reserved for this replica on its node (inference replicas
	// serve on it; ARK_PORT).
	Port int `json:"port,omitempty"`

	// Kind is the job's kind, and Task what the allocation runs (both
	// copied from the job's spec).
	Kind          string          `json:"kind"`
	Task          spec.Task       `json:"task"`
	Checkpoint    spec.Checkpoint `json:"checkpoint"`
	CheckpointURI string          `json:"checkpointUri,omitempty"`
	// CheckpointKey is the job namespace's checkpoint data key. Only the
	// allocation's own node gets it, when its agent lists its allocations
	// with its node secret; the state never holds it unwrapped and no
	// other answer carries it.
	CheckpointKey *CheckpointKey `json:"checkpointKey,omitempty"`

	// DesiredStatus is what the scheduler wants: run or stop.
	DesiredStatus string `json:"desiredStatus"`
	// StopCause is why the scheduler asked it to stop (cancelled,
	// preempted, drained, stopped): the status it ends in when its task
	// ends on the stop. The stopping command names it; allocations
	// stopped by entries written before it existed have none and end as
	// their agent reports them (failed).
	StopCause string `json:"stopCause,omitempty"`
	// Status is what the agent last reported: pending, running, succeeded,
	// failed, or lost when the node was; or the StopCause of a task the
	// scheduler stopped.
	Status   string `json:"status"`
	ExitCode *int   `json:"exitCode,omitempty"`
	Signal   string `json:"signal,omitempty"`
	Message  string `json:"message,omitempty"`
	// Progress is the task's last progress line ("step 120/300 loss 2.31").
	Progress string `json:"progress,omitempty"`
	// LastCheckpoint is the newest checkpoint the task reported.
	LastCheckpoint *CheckpointRef `json:"lastCheckpoint,omitempty"`
	// Ready is set while a service replica's health check passes (as its
	// agent reports it): only a ready replica is sent traffic.
	Ready bool `json:"ready,omitempty"`
	// ReadySince is when Ready last became true (a rollout counts a new
	// replica healthy once it has been ready spec.update.minHealthyTime).
	ReadySince *time.Time `json:"readySince,omitempty"`
	// JobVersion is the version of the job's spec this allocation runs.
	JobVersion int `json:"jobVersion,omitempty"`
	// StderrTail is the end of a failed task's stderr, as its agent
	// reported it: why it failed, in its own words.
	StderrTail string `json:"stderrTail,omitempty"`
	// Evals are the results an eval task reported, one per checkpoint
	// it evaluated; the leader records them in the model catalog.
	Evals []EvalResult `json:"evals,omitempty"`

	StartTime   *time.Time `json:"startTime,omitempty"`
	FinishTime  *time.Time `json:"finishTime,omitempty"`
	CreateIndex uint64     `json:"createIndex"`
	ModifyIndex uint64     `json:"modifyIndex"`
}

// CheckpointKey is a namespace's checkpoint data key (AES-256) and the ID
// that checkpoint manifests record.
type CheckpointKey struct {
	ID  string `json:"id"`
	Key []byte `json:"key"`
}

// Terminal reports whether the allocation's task has ended.
func (a *Allocation) Terminal() bool {
	switch a.Status {
	case AllocSucceeded, AllocFailed, AllocLost, AllocCancelled, AllocPreempted, AllocDrained, AllocStopped:
		return true
	}
	return false
}

// GPU is one GPU of a node.
type GPU struct {
	Index       int    `json:"index"`
	UUID        string `json:"uuid"`
	Model       string `json:"model"`
	MemoryBytes int64  `json:"memoryBytes"`
	PCIBusID    string `json:"pciBusId,omitempty"`
	NUMANode    int    `json:"numaNode"`
	// NVLinkPeers are the indexes of the GPUs this one reaches over NVLink
	// (directly or through NVSwitch).
	NVLinkPeers []int `json:"nvlinkPeers,omitempty"`
	// NVLinkDomain identifies the set of GPUs mutually connected by
	// NVLink: the lowest index in the set (a GPU without NVLink is alone
	// in its own).
	NVLinkDomain int `json:"nvlinkDomain"`
}

// RDMADevice is an RDMA NIC of a node (InfiniBand or RoCE).
type RDMADevice struct {
	// Name is the verbs device name ("mlx5_0").
	Name string `json:"name"`
	// Ports are its port numbers (usually [1]).
	Ports []int `json:"ports"`
	// Netdevs are its network interfaces (RoCE netdev or IPoIB).
	Netdevs  []string `json:"netdevs,omitempty"`
	PCIBusID string   `json:"pciBusId,omitempty"`
	// NUMANode is the NUMA node it hangs off, -1 when unknown.
	NUMANode int `json:"numaNode"`
}

// Node is a machine running an agent.
type Node struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Address is the host address ranks use to reach each other
	// (MASTER_ADDR); AgentAddr is the agent's own HTTP API (logs).
	Address   string `json:"address"`
	AgentAddr string `json:"agentAddr,omitempty"`
	// Status is ready or down.
	Status      string       `json:"status"`
	StatusInfo  string       `json:"statusInfo,omitempty"`
	GPUs        []GPU        `json:"gpus"`
	RDMA        []RDMADevice `json:"rdma,omitempty"`
	CPUMilli    int64        `json:"cpuMilli"`
	MemoryBytes int64        `json:"memoryBytes"`
	// Fake is true when the GPUs are simulated (dev mode and tests).
	Fake bool `json:"fake,omitempty"`
	// SecretDigest is the hex SHA-256 of the node's secret, the bearer
	// token its agent uses once registered. It is replicated (UpsertNode)
	// so that every server can check it, and never served: the API's node
	// answers carry it blank (scheduler/server node_identity.go).
	SecretDigest string `json:"secretDigest,omitempty"`
	// Fabric names the network domain the node sits in (a rack, an RDMA
	// leaf switch): a multi-node gang prefers nodes of one fabric.
	Fabric string `json:"fabric,omitempty"`
	// Ineligible nodes take no new allocations (ark node eligibility,
	// and every draining node).
	Ineligible bool `json:"ineligible,omitempty"`
	// Drain is set while work is being moved off the node.
	Drain *DrainStrategy `json:"drain,omitempty"`

	RegisterTime time.Time `json:"registerTime"`
	CreateIndex  uint64    `json:"createIndex"`
	ModifyIndex  uint64    `json:"modifyIndex"`
}

// Server is one Ark server of the cluster.
type Server struct {
	Name     string `json:"name"`
	RaftAddr string `json:"raftAddr"`
	HTTPAddr string `json:"httpAddr"`
}

// ServerSelf answers GET /v1/operator/raft/self: what a server knows of
// itself and of the cluster, used to form a cluster.
type ServerSelf struct {
	Server
	// HasState is true once the server is part of a Raft cluster.
	HasState bool `json:"hasState"`
	// Leader is the leader's name, if one is known.
	Leader string `json:"leader,omitempty"`
	// Peers are the other servers this one has heard of (its --join
	// addresses and whom they know), by HTTP address.
	Peers []string `json:"peers,omitempty"`
	// BootstrapExpect is the server's --bootstrap-expect: servers that
	// form a new cluster agree on it, and only they may bootstrap one.
	BootstrapExpect int `json:"bootstrapExpect,omitempty"`
	// LastIndex and AppliedIndex are this server's Raft log positions.
	LastIndex    uint64 `json:"lastIndex"`
	AppliedIndex uint64 `json:"appliedIndex"`
}

// Peer is one member of the Raft configuration, as list-peers shows it.
type Peer struct {
	ID        string `json:"id"`
	Address   string `json:"address"`
	HTTPAddr  string `json:"httpAddr,omitempty"`
	Voter     bool   `json:"voter"`
	Leader    bool   `json:"leader"`
	LastIndex uint64 `json:"lastIndex"`
	// Error is set when the peer could not be asked for its index.
	Error string `json:"error,omitempty"`
}

// DrainStrategy says how a node is drained: its jobs are left to finish
// until Deadline, then the gangs still on it are restarted elsewhere.
type DrainStrategy struct {
	Deadline  time.Time `json:"deadline"`
	StartedAt time.Time `json:"startedAt"`
}

// DrainRequest is the body of PUT /v1/nodes/{id}/drain.
type DrainRequest struct {
	// Enable starts a drain; false cancels one.
	Enable bool `json:"enable"`
	// Deadline is how long jobs may run on before they are moved ("1h";
	// "0s" moves them now).
	Deadline string `json:"deadline,omitempty"`
}

// EligibilityRequest is the body of PUT /v1/nodes/{id}/eligibility.
type EligibilityRequest struct {
	Eligible bool `json:"eligible"`
}

// SubmitResponse answers POST /v1/jobs.
type SubmitResponse struct {
	ID    string `json:"id"`
	Index uint64 `json:"index"`
}

// RegisterNodeResponse answers POST /v1/nodes/register.
type RegisterNodeResponse struct {
	ID           string `json:"id"`
	HeartbeatTTL string `json:"heartbeatTTL"`
	Index        uint64 `json:"index"`
	// Secret is the node's new secret (64 hex digits): its agent keeps it
	// (0600) and presents it as its bearer token from then on. It is empty
	// when the agent re-registered with its secret, which stays valid.
	Secret string `json:"secret,omitempty"`
	// LogsKey is what the servers present when they call this node's agent
	// (logs); the agent refuses calls without it. Empty without access
	// control.
	LogsKey string `json:"logsKey,omitempty"`
}

// HeartbeatResponse answers PUT /v1/nodes/{id}/heartbeat.
type HeartbeatResponse struct {
	HeartbeatTTL string `json:"heartbeatTTL"`
}

// AllocStatusUpdate is the body of PUT /v1/allocations/{id}/status.
type AllocStatusUpdate struct {
	Status   string `json:"status"`
	ExitCode *int   `json:"exitCode,omitempty"`
	Signal   string `json:"signal,omitempty"`
	Message  string `json:"message,omitempty"`
	// Progress and Checkpoint carry what the task last reported (ark task
	// report); absent fields leave the recorded ones as they are.
	Progress   string         `json:"progress,omitempty"`
	Checkpoint *CheckpointRef `json:"checkpoint,omitempty"`
	// StderrTail is the end of a failed task's stderr (its last lines,
	// bounded by the agent), as Kubernetes' termination message.
	StderrTail string `json:"stderrTail,omitempty"`
	// Ready, when set, is whether a service replica's health check
	// passes (absent: unchanged).
	Ready *bool `json:"ready,omitempty"`
	// Evals, when set, are an eval task's results (CheckEvals).
	Evals []EvalResult `json:"evals,omitempty"`
}

// CheckpointRef is the last checkpoint a task reported: what a preemption
// would fall back to, and where a restarted gang resumes.
type CheckpointRef struct {
	URI  string    `json:"uri"`
	Step int64     `json:"step"`
	Time time.Time `json:"time"`
}

// TaskReport is what a task tells its agent (POST
// /v1/allocations/{id}/report on the agent, or ark task report).
type TaskReport struct {
	Progress   string         `json:"progress,omitempty"`
	Checkpoint *CheckpointRef `json:"checkpoint,omitempty"`
	// Evals are an eval task's results, one per checkpoint.
	Evals []EvalResult `json:"evals,omitempty"`
	// Metrics are the task's figures for its agent's /metrics; they stay
	// on the node (a report of metrics alone is not passed to the
	// servers).
	Metrics *TaskMetrics `json:"metrics,omitempty"`
}

// LeaderResponse answers GET /v1/status/leader.
type LeaderResponse struct {
	Leader  string `json:"leader"`
	Address string `json:"address"`
}

// Error is the body of every error answer.
type Error struct {
	Error string `json:"error"`
	// Fields lists each problem of an invalid spec with its field path.
	Fields []spec.FieldError `json:"fields,omitempty"`
}

// IdempotencyHeader carries a submission's idempotency key.
const IdempotencyHeader = "Idempotency-Key"

// IndexHeader carries the state index an answer reflects; pass it back as
// ?index= to block until something newer exists.
const IndexHeader = "X-Ark-Index"

// NextTokenHeader carries, on a page of a list asked for with ?per_page=N,
// the ?next_token= that asks for the next page; it is absent on the last.
const NextTokenHeader = "X-Ark-Next-Token"

// Reason is one rule that keeps a job pending: the rule's name ("free_gpus",
// "nvlink", "fabric", "quota", "held", ...), the nodes it rejected (0 for
// a rule about the job or the gang), and what it says.
type Reason struct {
	Rule   string `json:"rule"`
	Nodes  int    `json:"nodes,omitempty"`
	Detail string `json:"detail"`
	// Holders are the jobs that hold GPUs on the nodes a rule about free
	// GPUs rejected (free_gpus, gpu_milli, nvlink): whom the job waits
	// for. Reasons recorded before holders were named have none.
	Holders []string `json:"holders,omitempty"`
	// MoreHolders counts the holders past the first MaxReasonHolders, which
	// alone are kept (a reason is written through Raft and rewritten when
	// its holders change: on a full cluster every pending job would list
	// thousands). The count is as of the last time the listed holders or
	// the text changed.
	MoreHolders int `json:"moreHolders,omitempty"`
}

// MaxReasonHolders is how many holders a reason names.
const MaxReasonHolders = 16

// SameHolders reports whether two lists of reasons name the same holders,
// rule by rule (a job's Reason text may stay while the jobs it waits for
// change). Lists that name none are the same whatever else they hold: the
// FSM compares them, and reasons recorded before holders must compare as
// the text alone did.
func SameHolders(a, b []Reason) bool {
	return slices.EqualFunc(holdersOf(a), holdersOf(b), slices.Equal[[]string])
}

// holdersOf lists, for each reason that names holders, its rule then them.
func holdersOf(rs []Reason) [][]string {
	var out [][]string
	for _, r := range rs {
		if len(r.Holders) > 0 {
			out = append(out, append([]string{r.Rule}, r.Holders...))
		}
	}
	return out
}
