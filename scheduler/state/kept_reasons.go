package state

import (
	"fmt"

	"github.com/hashicorp/go-memdb"

	"github.com/ark-sched/ark/scheduler/api"
)

// Pending reasons kept beside their jobs.
//
// A PendingReasons entry (the leader's held reasons, committed together)
// stores each reason in its own small table rather than in the job: writing
// it into the job copied the whole api.Job and re-inserted it under every
// index of the jobs table, and under load that was a third of what the FSM
// did per submission. Reads of a pending job (Snapshot.Job, Jobs, ...) show
// the kept reason as the job's reason, reasons and cannotFit.
//
// A kept reason lasts until its job is next written, by any command: the
// write (placed, preempting, cancelled, updated, requeued, forgotten) is
// newer than the reason and the job's own fields say what is true then;
// the next pass that sees a pending job without a reason finds a new one.
// The rule reads only the entry's writes, so every server, restored from a
// snapshot (which carries the table, version 7) or not, keeps the same.
//
// ApplyPlan's Pending reasons are still written into the job, as before,
// so that logs written before PendingReasons replay the same.

const tableReasons = "reasons"

// keptReason is a pending reason and the index of the entry that wrote it.
type keptReason struct {
	PendingReason
	Index uint64 `json:"index"`
	// job is the job as reads show it: the stored job with this reason.
	// Made once when the reason is kept (or restored), it stays right
	// while the reason lasts, since any write of the job drops the
	// reason; reads of a deep queue then copy nothing.
	job *api.Job
}

func reasonsSchema() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableReasons: {Name: tableReasons, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: keptReasonIndex{}},
		}},
	}
}

// keptReasonIndex indexes kept reasons by job ID, as memdb's
// StringFieldIndex would (the ID and a 0 byte), without its reflection:
// finding a field of an embedded struct by name allocated on every write.
type keptReasonIndex struct{}

func (keptReasonIndex) FromObject(obj any) (bool, []byte, error) {
	kr, ok := obj.(*keptReason)
	if !ok {
		return false, nil, fmt.Errorf("kept reason index: %T is not a kept reason", obj)
	}
	if kr.JobID == "" {
		return false, nil, nil
	}
	return true, append([]byte(kr.JobID), 0), nil
}

func (keptReasonIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("kept reason index: look up with one job ID, got %v", args)
	}
	id, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("kept reason index: a job ID is a string, got %T", args[0])
	}
	return append([]byte(id), 0), nil
}

// PendingReasonsRequest records why pending jobs wait, beside the jobs. A
// reason for a job that is gone, not pending, or already has that reason
// changes nothing.
type PendingReasonsRequest struct {
	Reasons []PendingReason `json:"reasons"`
}

func applyPendingReasons(txn *memdb.Txn, index uint64, req *PendingReasonsRequest) error {
	changed := false
	for _, pr := range req.Reasons {
		raw, _ := txn.First(tableJobs, "id", pr.JobID)
		if raw == nil {
			continue
		}
		j := raw.(*api.Job)
		if shown := withKeptReason(nil, txn, j); shown.Status != api.JobPending || (shown.Reason == pr.Reason && api.SameHolders(shown.Reasons, pr.Reasons)) {
			continue
		}
		if err := txn.Insert(tableReasons, &keptReason{PendingReason: pr, Index: index, job: shownWith(j, pr)}); err != nil {
			return fmt.Errorf("keep the reason of job %s: %w", pr.JobID, err)
		}
		changed = true
	}
	if !changed {
		return nil
	}
	// What reads of the jobs show changed: blocking queries on them see
	// the index move.
	return setIndex(txn, tableJobs, index)
}

// withKeptReason returns j, as stored, with its kept reason if it is
// pending and has one (never j changed), adding the reason's watch to ws.
func withKeptReason(ws memdb.WatchSet, txn *memdb.Txn, j *api.Job) *api.Job {
	if j.Status != api.JobPending {
		return j
	}
	ch, raw, err := txn.FirstWatch(tableReasons, "id", j.ID)
	if err != nil {
		panic(fmt.Sprintf("state: query %s: %v", tableReasons, err)) // schema bug
	}
	ws.Add(ch)
	if raw == nil {
		return j
	}
	if kr := raw.(*keptReason); kr.job != nil {
		return kr.job
	}
	return shownWith(j, raw.(*keptReason).PendingReason)
}

// shownWith is a copy of j with pr as its reason.
func shownWith(j *api.Job, pr PendingReason) *api.Job {
	c := *j
	c.Reason, c.Reasons, c.CannotFit = pr.Reason, pr.Reasons, pr.Never
	return &c
}

// showKeptReasons makes the shown job of every kept reason of a restored
// state, in its restore transaction (the objects are not visible yet).
func showKeptReasons(txn *memdb.Txn) error {
	for _, kr := range collect[*keptReason](nil, txn, tableReasons, "id") {
		raw, err := txn.First(tableJobs, "id", kr.JobID)
		if err != nil {
			return err
		}
		if raw == nil {
			return fmt.Errorf("kept reason of job %s, which the snapshot does not hold", kr.JobID)
		}
		kr.job = shownWith(raw.(*api.Job), kr.PendingReason)
	}
	return nil
}

// withKeptReasons applies withKeptReason to each job, in place, watching
// the whole reasons table in ws.
func withKeptReasons(ws memdb.WatchSet, txn *memdb.Txn, jobs []*api.Job) []*api.Job {
	if ws != nil {
		it, err := txn.Get(tableReasons, "id")
		if err != nil {
			panic(fmt.Sprintf("state: query %s: %v", tableReasons, err)) // schema bug
		}
		ws.Add(it.WatchCh())
	}
	for i, j := range jobs {
		jobs[i] = withKeptReason(nil, txn, j)
	}
	return jobs
}

// dropKeptReasons forgets the kept reason of every job an entry wrote
// (changes are its writes): the write is newer than the reason.
func dropKeptReasons(txn *memdb.Txn, changes memdb.Changes) error {
	for _, c := range changes {
		before, _ := c.Before.(*api.Job)
		if c.Table != tableJobs || before == nil {
			continue
		}
		raw, err := txn.First(tableReasons, "id", before.ID)
		if err != nil {
			return err
		}
		if raw != nil {
			if err := txn.Delete(tableReasons, raw); err != nil {
				return fmt.Errorf("forget the reason of job %s: %w", before.ID, err)
			}
		}
	}
	return nil
}
