package state

import (
	"fmt"

	"github.com/hashicorp/go-memdb"

	"github.com/ark-sched/ark/scheduler/api"
)

// Each namespace's count of unfinished (pending or running) jobs, kept by
// the FSM in the same transaction as the job writes it counts, so that a
// submission's limit check reads one record instead of walking up to the
// limit's worth of jobs (a third of a submission's cost at 5,000 jobs).
// The counts are derived: snapshots do not carry them (their format is
// unchanged) and a restore counts the jobs it reads. A job without a
// namespace is not counted, as the ns_status index it replaces did not
// index it.

const tableJobCounts = "job_counts"

// jobCount is one namespace's count.
type jobCount struct {
	Namespace  string
	Unfinished int
}

func jobCountsSchema() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableJobCounts: {Name: tableJobCounts, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Namespace"}},
		}},
	}
}

func unfinished(j *api.Job) bool {
	return j.Status == api.JobPending || j.Status == api.JobRunning
}

// countJob adds d to deltas for j's namespace when j is unfinished.
func countJob(deltas map[string]int, j *api.Job, d int) {
	if j != nil && j.Namespace != "" && unfinished(j) {
		deltas[j.Namespace] += d
	}
}

// countJobChanges folds the job writes among an entry's changes into the
// counts, in its transaction txn, before it commits.
func countJobChanges(txn *memdb.Txn, changes memdb.Changes) error {
	var deltas map[string]int
	for _, c := range changes {
		if c.Table != tableJobs {
			continue
		}
		if deltas == nil {
			deltas = map[string]int{}
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
	deltas := map[string]int{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		countJob(deltas, raw.(*api.Job), 1)
	}
	return addJobCounts(txn, deltas)
}

// addJobCounts adds deltas (by namespace) to the stored counts.
func addJobCounts(txn *memdb.Txn, deltas map[string]int) error {
	for ns, d := range deltas {
		if d == 0 {
			continue
		}
		c := &jobCount{Namespace: ns, Unfinished: d}
		if raw, err := txn.First(tableJobCounts, "id", ns); err != nil {
			return fmt.Errorf("read unfinished jobs of namespace %q: %w", ns, err)
		} else if raw != nil {
			c.Unfinished += raw.(*jobCount).Unfinished
		}
		if err := txn.Insert(tableJobCounts, c); err != nil {
			return fmt.Errorf("count unfinished jobs of namespace %q: %w", ns, err)
		}
	}
	return nil
}

// CountUnfinished counts a namespace's pending and running jobs, up to
// limit (what a limit check needs).
func (s *Snapshot) CountUnfinished(namespace string, limit int) int {
	raw, err := s.txn.First(tableJobCounts, "id", namespace)
	if err != nil {
		panic(fmt.Sprintf("state: count jobs: %v", err)) // a schema bug
	}
	if raw == nil {
		return 0
	}
	return min(raw.(*jobCount).Unfinished, limit)
}
