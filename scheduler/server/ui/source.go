package ui

import (
	"context"
	"io"

	"github.com/ark-sched/ark/scheduler/api"
)

// Source is what the dashboard reads. The server implements it over its
// state store; every method answers for the caller whose identity ctx
// carries, with the API's own filtering.
type Source interface {
	// View returns what the caller may see once the state's index passes
	// index, or at once when index is 0, or when ctx ends (then the last
	// answer stands, as a blocking query's does).
	View(ctx context.Context, index uint64) (*View, error)
	// JobLog copies one rank's stdout of a job to w, or returns an error
	// when the caller may not read it or its node cannot be reached.
	JobLog(ctx context.Context, jobID string, rank int, w io.Writer) error
}

// View is the state one page is drawn from.
type View struct {
	// Index is the Raft index the view reflects.
	Index uint64
	Nodes []*api.Node
	// Jobs are the jobs the caller may see, each with its allocations.
	Jobs []*api.Job
	// Hidden are the live allocations of jobs the caller may not see,
	// stripped to node, GPUs and share: the GPU map shows them as taken
	// without saying by whom.
	Hidden []*api.Allocation
	Queues []Queue
}

// Queue is one queue's configuration and usage, counting only the jobs
// the caller may see (as GET /v1/queues does).
type Queue struct {
	Name         string
	QuotaGPUs    int
	Weight       float64
	Borrow       bool
	UsedGPUs     float64
	BorrowedGPUs float64
	RunningJobs  int
	PendingJobs  int
}
