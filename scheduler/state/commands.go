package state

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// MessageType is the first byte of every Raft log entry. The values are
// append-only: never renumber or reuse one. Commands stay below
// IgnoreUnknownTypeFlag; a command that older servers may safely skip is
// numbered with the flag set.
type MessageType uint8

// IgnoreUnknownTypeFlag set in a type tells a server that does not know the
// type to skip the entry rather than stop (Nomad's flag of the same name and
// value). Only a command whose loss cannot change what the other commands do
// may carry it: for instance a record kept for operators.
const IgnoreUnknownTypeFlag MessageType = 128

// Commands.
const (
	RegisterJobType MessageType = 1
	CancelJobType   MessageType = 2
	UpsertNodeType  MessageType = 3
	NodeStatusType  MessageType = 4
	ApplyPlanType   MessageType = 5
	AllocStatusType MessageType = 6
	// ServerType records (or, with Remove, forgets) a server's addresses.
	ServerType MessageType = 7
	// NodeEligibilityType opens or closes a node to new allocations.
	NodeEligibilityType MessageType = 8
	// NodeDrainType starts, cancels or completes a node's drain.
	NodeDrainType MessageType = 9
	// MigrateJobsType restarts gangs elsewhere (off draining nodes)
	// without using their restart budget.
	MigrateJobsType MessageType = 10
	// GCJobsType forgets finished jobs and their allocations.
	GCJobsType MessageType = 11
	// ACL state (apply_acl.go): the first management token, once;
	// policies and tokens.
	ACLBootstrapType    MessageType = 12
	ACLUpsertPolicyType MessageType = 13
	ACLDeletePolicyType MessageType = 14
	ACLUpsertTokenType  MessageType = 15
	ACLDeleteTokenType  MessageType = 16
	// Namespace checkpoint keys (apply_keys.go), stored wrapped.
	NamespaceKeyCreateType MessageType = 17
	NamespaceKeyDeleteType MessageType = 18
	// The model catalog (apply_models.go).
	ModelRegisterType MessageType = 19
	ModelDeleteType   MessageType = 20
	ModelEvalType     MessageType = 21
	// UpdateJobType changes a job's spec (a new version); PromoteJobType
	// lets a service's rollout go on past its canaries.
	UpdateJobType  MessageType = 22
	PromoteJobType MessageType = 23
	// ScaleJobType sets a running service's replica count.
	ScaleJobType MessageType = 24
	// RegisterJobsType registers several jobs in one entry: the leader's
	// group commit of concurrent submissions (register_batch.go). Each
	// request applies as a RegisterJob would, in order.
	RegisterJobsType MessageType = 25
	// PendingReasonsType records why pending jobs wait, beside the jobs
	// (kept_reasons.go): the leader's held reasons, committed together.
	PendingReasonsType MessageType = 26
	// RegisterJobsBinaryType is RegisterJobs in a binary body: a format
	// version byte, then the requests as CBOR (register_binary.go). The
	// leader writes every registration this way, a lone one as a batch of
	// one; RegisterJob and RegisterJobs (JSON) entries still replay.
	RegisterJobsBinaryType MessageType = 27
)

func (t MessageType) String() string {
	switch t {
	case RegisterJobType:
		return "RegisterJob"
	case CancelJobType:
		return "CancelJob"
	case UpsertNodeType:
		return "UpsertNode"
	case NodeStatusType:
		return "NodeStatus"
	case ApplyPlanType:
		return "ApplyPlan"
	case AllocStatusType:
		return "AllocStatus"
	case ServerType:
		return "Server"
	case NodeEligibilityType:
		return "NodeEligibility"
	case NodeDrainType:
		return "NodeDrain"
	case MigrateJobsType:
		return "MigrateJobs"
	case GCJobsType:
		return "GCJobs"
	case ACLBootstrapType:
		return "ACLBootstrap"
	case ACLUpsertPolicyType:
		return "ACLUpsertPolicy"
	case ACLDeletePolicyType:
		return "ACLDeletePolicy"
	case ACLUpsertTokenType:
		return "ACLUpsertToken"
	case ACLDeleteTokenType:
		return "ACLDeleteToken"
	case NamespaceKeyCreateType:
		return "NamespaceKeyCreate"
	case NamespaceKeyDeleteType:
		return "NamespaceKeyDelete"
	case ModelRegisterType:
		return "ModelRegister"
	case ModelDeleteType:
		return "ModelDelete"
	case UpdateJobType:
		return "UpdateJob"
	case PromoteJobType:
		return "PromoteJob"
	case ScaleJobType:
		return "ScaleJob"
	case RegisterJobsType:
		return "RegisterJobs"
	case ModelEvalType:
		return "ModelEval"
	case PendingReasonsType:
		return "PendingReasons"
	case RegisterJobsBinaryType:
		return "RegisterJobsBinary"
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// known reports whether this version can apply the type. Types are
// numbered from 1 without gaps: appending one moves the upper bound (a test
// checks that every named type is known).
func (t MessageType) known() bool { return t >= RegisterJobType && t <= RegisterJobsBinaryType }

// RegisterJobRequest stores a new job as pending.
type RegisterJobRequest struct {
	Job *api.Job `json:"job"`
}

// RegisterJobResponse is the job a RegisterJob created, or the one an
// earlier RegisterJob with the same submit token created.
type RegisterJobResponse struct {
	ID string `json:"id"`
	// Existing is true when the token matched an earlier submission.
	Existing bool `json:"existing"`
}

// CancelJobRequest cancels a job and asks its allocations to stop.
type CancelJobRequest struct {
	JobID  string    `json:"jobId"`
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
	// StopCause is the status (api.StopCauses) the allocations this
	// command stops end in. The leader names it; entries written before
	// it existed have none, and their stopped allocations end as their
	// agents report them, so an old log replays as it did.
	StopCause string `json:"stopCause,omitempty"`
}

// UpsertNodeRequest registers a node or updates its inventory.
type UpsertNodeRequest struct {
	Node *api.Node `json:"node"`
}

// NodeStatusRequest changes a node's status (ready, down). A node that goes
// down loses its live allocations.
type NodeStatusRequest struct {
	NodeID string    `json:"nodeId"`
	Status string    `json:"status"`
	Info   string    `json:"info"`
	Time   time.Time `json:"time"`
	// StopCause applies to the ranks on other nodes of the gangs a node
	// that goes down loses (they are stopped, not lost).
	StopCause string `json:"stopCause,omitempty"`
}

// Plan is the scheduler's decision for one pass: whole gangs to place and
// the reasons the rest stay pending.
type Plan struct {
	// Placements each hold every allocation of one job; a placement commits
	// all-or-nothing.
	Placements []JobPlacement `json:"placements"`
	// Pending gives the new reason of jobs that stay pending.
	Pending []PendingReason `json:"pending"`
	// Preemptions evict running gangs for pending jobs that fit nowhere
	// else. Each commits whole or not at all: the FSM re-checks that the
	// job is still pending and every victim still runs at a lower
	// priority (or is borrowed capacity the job's queue reclaims).
	Preemptions []Preemption `json:"preemptions,omitempty"`
	// Rollouts advance services' deployments (apply_update.go).
	Rollouts []RolloutStep `json:"rollouts,omitempty"`
}

// Preemption evicts Victims (job IDs) for JobID: their allocations are
// asked to stop and each goes back to the queue whole, without using up
// its restarts.
type Preemption struct {
	JobID   string   `json:"jobId"`
	Victims []string `json:"victims"`
	// Reclaim: the job takes back its queue's quota from borrowed
	// allocations, which may outrank it.
	Reclaim bool `json:"reclaim,omitempty"`
	// LostGPUSeconds is the work the victims lose (for the record).
	LostGPUSeconds float64 `json:"lostGpuSeconds,omitempty"`
	// Nodes are where the job goes once the victims stop; they are held
	// for it (closed to other work) until it is placed or HoldUntil.
	// Entries written before holds existed have none.
	Nodes     []string  `json:"nodes,omitempty"`
	HoldUntil time.Time `json:"holdUntil,omitempty"`
	// StopCause is the status (api.StopCauses) the allocations this
	// command stops end in. The leader names it; entries written before
	// it existed have none, and their stopped allocations end as their
	// agents report them, so an old log replays as it did.
	StopCause string `json:"stopCause,omitempty"`
}

// JobPlacement is every allocation of one job.
type JobPlacement struct {
	JobID  string            `json:"jobId"`
	Allocs []*api.Allocation `json:"allocs"`
}

// PendingReason is why a job could not be placed.
type PendingReason struct {
	JobID   string       `json:"jobId"`
	Reason  string       `json:"reason"`
	Reasons []api.Reason `json:"reasons,omitempty"`
	// Never is set when the job cannot fit even on the idle cluster
	// (api.Job.CannotFit).
	Never bool `json:"never,omitempty"`
}

// ApplyPlanRequest commits a plan. The leader checks the plan against the
// latest state just before it proposes it (scheduler/sched.Verify); the FSM
// keeps only checks that never change between versions (the job is still
// pending, IDs are unique, nodes are eligible, no GPU holds more than 1000
// milli, CPU and memory within the node) and drops a placement that fails
// them, whole.
type ApplyPlanRequest struct {
	Plan Plan      `json:"plan"`
	Time time.Time `json:"time"`
}

// ApplyPlanResponse says which placements were committed.
type ApplyPlanResponse struct {
	Placed []string `json:"placed"`
	// Preempted are the victims evicted, by preempting job ID.
	Preempted map[string][]string `json:"preempted,omitempty"`
	Rejected  map[string]string   `json:"rejected,omitempty"`
}

// AllocStatusRequest records what an agent reports of an allocation.
type AllocStatusRequest struct {
	AllocID string                `json:"allocId"`
	Update  api.AllocStatusUpdate `json:"update"`
	Time    time.Time             `json:"time"`
	// StopCause applies to the gang's other ranks that this report
	// stops (a rank failed: the job restarts or fails).
	StopCause string `json:"stopCause,omitempty"`
}

// ServerRequest records a server's addresses, so that any server can
// forward writes to the leader's HTTP API; Remove forgets it.
type ServerRequest struct {
	Server *api.Server `json:"server"`
	Remove bool        `json:"remove,omitempty"`
}

// NodeEligibilityRequest opens (Eligible) or closes a node to placements.
type NodeEligibilityRequest struct {
	NodeID   string `json:"nodeId"`
	Eligible bool   `json:"eligible"`
}

// NodeDrainRequest starts a drain (Drain set), cancels one (Drain nil,
// Complete false: the node stays ineligible), or records that a drain is
// done (Complete).
type NodeDrainRequest struct {
	NodeID   string             `json:"nodeId"`
	Drain    *api.DrainStrategy `json:"drain,omitempty"`
	Complete bool               `json:"complete,omitempty"`
}

// MigrateJobsRequest moves running gangs: each job's live ranks are asked
// to stop and the job goes back to the queue, to be placed on eligible
// nodes. It does not count against the job's restarts.
type MigrateJobsRequest struct {
	JobIDs []string  `json:"jobIds"`
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
	// NodeID is the draining node: a service (api.Job.Service) moves only
	// its replicas there, one replacement each. Entries written before
	// services existed have none.
	NodeID string `json:"nodeId,omitempty"`
	// StopCause is the status (api.StopCauses) the allocations this
	// command stops end in. The leader names it; entries written before
	// it existed have none, and their stopped allocations end as their
	// agents report them, so an old log replays as it did.
	StopCause string `json:"stopCause,omitempty"`
}

// GCJobsRequest forgets jobs that ended before Before, with their
// allocations. The leader names them; the FSM re-checks each (a job that
// is not terminal, or ended later, stays).
type GCJobsRequest struct {
	JobIDs []string  `json:"jobIds"`
	Before time.Time `json:"before"`
}

// GCJobsResponse counts what was forgotten.
type GCJobsResponse struct {
	Jobs, Allocs int
}

// Encode renders a command as a log entry: its type byte, then JSON.
func Encode(t MessageType, req any) ([]byte, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", t, err)
	}
	return append([]byte{byte(t)}, body...), nil
}
