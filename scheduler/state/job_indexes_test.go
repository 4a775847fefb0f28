package state

import (
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestJobIndexes checks the jobs table's reads against a plain scan of
// every job: jobs of every status, created at and updated to random
// indexes, with and without tokens.
func TestJobIndexes(t *testing.T) {
	statuses := []string{api.JobPending, api.JobRunning, api.JobSucceeded, api.JobFailed, api.JobCancelled}
	f := NewFSM(zap.NewNop())
	r := rand.New(rand.NewSource(7))
	for round := range 3 {
		txn := f.store.writeTxn()
		for i := range 120 {
			j := testJob(fmt.Sprintf("j%02x-%d", r.Intn(256), i+1000*round), 1, 1)
			j.Status = statuses[r.Intn(len(statuses))]
			j.Priority = r.Intn(3) * 10
			j.CreateIndex = uint64(r.Intn(40))
			if i%3 == 0 {
				j.SubmitToken = "default/" + j.ID
			}
			if err := txn.Insert(tableJobs, j); err != nil {
				t.Fatal(err)
			}
		}
		// Rewrite some: a new status (and index key) for a third.
		for _, j := range collect[*api.Job](nil, txn, tableJobs, "id") {
			if r.Intn(3) == 0 {
				nj := *j
				nj.Status = statuses[r.Intn(len(statuses))]
				if err := txn.Insert(tableJobs, &nj); err != nil {
					t.Fatal(err)
				}
			}
		}
		txn.Commit()
	}
	snap := f.Store().Snapshot()
	all := snap.Jobs(nil)
	ref := func(keep func(*api.Job) bool) []string {
		var js []*api.Job
		for _, j := range all {
			if keep(j) {
				js = append(js, j)
			}
		}
		slices.SortStableFunc(js, func(a, b *api.Job) int { return strings.Compare(a.ID, b.ID) })
		sortByPriority(js)
		return ids(js)
	}
	for _, st := range statuses {
		want := ref(func(j *api.Job) bool { return j.Status == st })
		if got := ids(snap.JobsByStatus(nil, st)); !reflect.DeepEqual(got, want) {
			t.Errorf("JobsByStatus(%s) = %v, want %v", st, got, want)
		}
	}
	for since := uint64(0); since <= 41; since++ {
		want := ref(func(j *api.Job) bool { return j.Status == api.JobPending && j.CreateIndex > since })
		if got := ids(snap.PendingJobsSince(since)); !reflect.DeepEqual(got, want) {
			t.Errorf("PendingJobsSince(%d) = %v, want %v", since, got, want)
		}
	}
	for _, j := range all {
		if j.SubmitToken == "" {
			continue
		}
		raw, err := snap.txn.First(tableJobs, "token", j.SubmitToken)
		if err != nil || raw != j {
			t.Errorf("token %s: %v, %v", j.SubmitToken, raw, err)
		}
	}
	for _, bad := range []struct {
		index string
		args  []any
		want  string
	}{
		{"status", []any{api.JobPending, 3}, "uint64 create index"},
		{"status", []any{7}, "string status"},
		{"status", []any{"a", uint64(1), 2}, "optional create index, got 3"},
		{"id", []any{uint64(1)}, "look up with a string"},
		{"token", []any{"a", "b"}, "one string, got 2"},
	} {
		if _, err := snap.txn.Get(tableJobs, bad.index, bad.args...); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Get(%s, %v): %v, want %q", bad.index, bad.args, err, bad.want)
		}
	}
}

func ids(js []*api.Job) []string {
	out := make([]string, len(js))
	for i, j := range js {
		out[i] = j.ID
	}
	return out
}
