package ui

import (
	"sort"
	"strconv"

	"github.com/ark-sched/ark/scheduler/api"
)

// The queues page: each queue's quota, use, borrowing, and its pending
// jobs with the scheduler's reasons for each.

type queueRow struct {
	Queue
	Used, Borrowed string
	Pending        []pendingJob
}

type pendingJob struct {
	ID, Reason string
	Reasons    []api.Reason
}

func buildQueues(v *View) []queueRow {
	pending := map[string][]pendingJob{}
	for _, j := range v.Jobs {
		if j.Status == api.JobPending {
			pending[j.Queue] = append(pending[j.Queue], pendingJob{ID: j.ID, Reason: j.Reason, Reasons: j.Reasons})
		}
	}
	out := make([]queueRow, 0, len(v.Queues))
	for _, q := range v.Queues {
		ps := pending[q.Name]
		sort.Slice(ps, func(i, k int) bool { return ps[i].ID < ps[k].ID })
		out = append(out, queueRow{Queue: q, Used: decimal(q.UsedGPUs), Borrowed: decimal(q.BorrowedGPUs), Pending: ps})
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Name < out[k].Name })
	return out
}

func decimal(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
