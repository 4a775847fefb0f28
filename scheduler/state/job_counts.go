package state

import (
	"fmt"

	"github.com/hashicorp/go-memdb"

	"github.com/ark-sched/ark/scheduler/api"
)

// Each namespace's usage by its unfinished (pending or running) jobs, kept
// by the FSM in the same transaction as the job writes it counts, so that
// a submission's limit checks (the server's per-namespace job limit, ACL
// policy limits) read one record instead of walking the namespace's jobs
// (a third of a submission's cost at 5,000 jobs). The counts are derived:
// snapshots do not carry them (their format is unchanged) and a restore
// counts the jobs it reads. A job without a namespace is not counted, as
// the (namespace, status) index they replace did not index it.

const tableJobCounts = "job_counts"

// jobCount is one namespace's usage.
type jobCount struct {
	Namespace string
	Usage     NamespaceUsage
}

func jobCountsSchema() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableJobCounts: {Name: tableJobCounts, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Namespace"}},
		}},
	}
}

// countJob adds j's share of its namespace's usage to deltas, times d (1
// or -1), when j is unfinished.
func countJob(deltas map[string]NamespaceUsage, j *api.Job, d int) {
	if j == nil || j.Namespace == "" {
		return
	}
	u := deltas[j.Namespace]
	switch j.Status {
	case api.JobPending:
		u.Pending += d
	case api.JobRunning:
		u.Running += d
	default:
		return
	}
	u.GPUMilli += int64(d) * j.Spec.GPUMilliTotal()
	deltas[j.Namespace] = u
}

// countJobChanges folds the job writes among an entry's changes into the
// counts, in its transaction txn, before it commits.
func countJobChanges(txn *memdb.Txn, changes memdb.Changes) error {
	var deltas map[string]NamespaceUsage
	for _, c := range changes {
		if c.Table != tableJobs {
			continue
		}
		if deltas == nil {
			deltas = map[string]NamespaceUsage{}
		}
		before, _ := c.Before.(*api.Job)
		after, _ := c.After.(*api.Job)
		countJob(deltas, before, -1)
		countJob(deltas, after, 1)
	}
	return addJobCounts(txn, deltas)
}

// recountJobs counts every job of txn anew (a restored state's).
func recountJobs(txn *memdb.Txn) error {
	if _, err := txn.DeleteAll(tableJobCounts, "id"); err != nil {
		return fmt.Errorf("clear unfinished job counts: %w", err)
	}
	it, err := txn.Get(tableJobs, "id")
	if err != nil {
		return fmt.Errorf("count unfinished jobs: %w", err)
	}
	deltas := map[string]NamespaceUsage{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		countJob(deltas, raw.(*api.Job), 1)
	}
	return addJobCounts(txn, deltas)
}

// addJobCounts adds deltas (by namespace) to the stored counts.
func addJobCounts(txn *memdb.Txn, deltas map[string]NamespaceUsage) error {
	for ns, d := range deltas {
		if d == (NamespaceUsage{}) {
			continue
		}
		c := &jobCount{Namespace: ns, Usage: d}
		if raw, err := txn.First(tableJobCounts, "id", ns); err != nil {
			return fmt.Errorf("read unfinished jobs of namespace %q: %w", ns, err)
		} else if raw != nil {
			old := raw.(*jobCount).Usage
			c.Usage.Pending += old.Pending
			c.Usage.Running += old.Running
			c.Usage.GPUMilli += old.GPUMilli
		}
		if err := txn.Insert(tableJobCounts, c); err != nil {
			return fmt.Errorf("count unfinished jobs of namespace %q: %w", ns, err)
		}
	}
	return nil
}

// NamespaceUsage is what a namespace's pending and running jobs hold:
// their counts and the GPUs they ask for.
func (s *Snapshot) NamespaceUsage(namespace string) NamespaceUsage {
	raw, err := s.txn.First(tableJobCounts, "id", namespace)
	if err != nil {
		panic(fmt.Sprintf("state: namespace usage: %v", err)) // a schema bug
	}
	if raw == nil {
		return NamespaceUsage{}
	}
	return raw.(*jobCount).Usage
}

// CountUnfinished counts a namespace's pending and running jobs, up to
// limit (what a limit check needs).
func (s *Snapshot) CountUnfinished(namespace string, limit int) int {
	u := s.NamespaceUsage(namespace)
	return min(u.Pending+u.Running, limit)
}
