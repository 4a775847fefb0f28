package state

import (
	"slices"

	"github.com/hashicorp/go-memdb"

	"github.com/ark-sched/ark/scheduler/api"
)

// CapacityIndex names, for Snapshot.Index, the last write that may have
// freed or changed what the nodes can take: a node registered or changed
// (status, eligibility, drain, inventory), an allocation deleted, ended,
// told to stop or run (preemption, cancel), or moved, a job put back
// to pending, and a job's spec updated (a new version). The leader's
// scheduler looks at every pending job again only
// after such a write: an allocation's other writes (created by a plan,
// reported running, a checkpoint) only ever take capacity, or change
// nothing a pending job waits for, and were most of the writes that made
// it look again. Like the job counts, the index is derived: the FSM sets
// it in the entry's own transaction, and neither the log nor the snapshot
// carries it (after a restore it reads 0, a change).
const CapacityIndex = "capacity"

// markCapacityChanges sets CapacityIndex to index when the changes of an
// entry (txn's) hold a write that may free or change capacity.
func markCapacityChanges(txn *memdb.Txn, index uint64, changes memdb.Changes) error {
	for _, c := range changes {
		if capacityChange(c) {
			return setIndex(txn, CapacityIndex, index)
		}
	}
	return nil
}

func capacityChange(c memdb.Change) bool {
	switch c.Table {
	case tableNodes:
		return true
	case tableAllocs:
		before, _ := c.Before.(*api.Allocation)
		after, _ := c.After.(*api.Allocation)
		switch {
		case before == nil:
			return false // a new allocation takes capacity
		case after == nil:
			return !before.Terminal()
		}
		return before.Terminal() != after.Terminal() || before.DesiredStatus != after.DesiredStatus ||
			before.NodeID != after.NodeID || !slices.Equal(before.GPUs, after.GPUs) || before.GPUMilli != after.GPUMilli ||
			before.GPUMemoryBytes != after.GPUMemoryBytes || before.CPUMilli != after.CPUMilli || before.MemoryBytes != after.MemoryBytes
	case tableJobVersions:
		return true // a job updated: a pending one may fit now
	case tableJobs:
		before, _ := c.Before.(*api.Job)
		after, _ := c.After.(*api.Job)
		// Requeued (a restart, a preempted job): an old job pending again.
		return before != nil && after != nil && before.Status != api.JobPending && after.Status == api.JobPending
	}
	return false
}
