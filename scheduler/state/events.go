package state

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/ark-sched/ark/scheduler/api"
)

// Job events: each apply function that changes a job in a way its owner
// would ask about ("why did it restart?") records one event on the job it
// stores, with the command's time and the entry's index, so that the list
// is the same on every server and after a replay. A job keeps the last
// api.MaxJobEvents; a checkpoint event replaces the checkpoint event just
// before it, so a long run's checkpoints do not push the rest out.

// maxEventMessage bounds an event's text (placements of large gangs).
const maxEventMessage = 512

// addEvent records an event on j, a copy of a stored job that the caller
// stores: the list is copied, never appended to in place (the store's
// job shares its array).
func addEvent(j *api.Job, index uint64, t time.Time, typ, msg string) {
	if len(msg) > maxEventMessage {
		msg = msg[:maxEventMessage-3] + "..."
	}
	ev := api.JobEvent{Time: t, Index: index, Type: typ, Message: msg}
	evs := slices.Clip(j.Events)
	if n := len(evs); typ == api.EventCheckpoint && n > 0 && evs[n-1].Type == api.EventCheckpoint {
		evs = evs[: n-1 : n-1]
	}
	evs = append(evs, ev)
	if len(evs) > api.MaxJobEvents {
		evs = slices.Clone(evs[len(evs)-api.MaxJobEvents:])
	}
	j.Events = evs
}

// placedMessage says where allocs went: "rank 0 on n1, ranks 1-2 on n2"
// by node in rank order, or "replica N on n1" for a service.
func placedMessage(allocs []*api.Allocation, service bool) string {
	word := "rank"
	if service {
		word = "replica"
	}
	byNode := map[string][]int{}
	var nodes []string
	for _, a := range allocs {
		name := a.Node
		if name == "" {
			name = a.NodeID
		}
		if _, ok := byNode[name]; !ok {
			nodes = append(nodes, name)
		}
		byNode[name] = append(byNode[name], a.Rank)
	}
	parts := make([]string, len(nodes))
	for i, n := range nodes {
		ranks := byNode[n]
		slices.Sort(ranks)
		w := word
		if len(ranks) > 1 {
			w += "s"
		}
		parts[i] = fmt.Sprintf("%s %s on %s", w, rankRanges(ranks), n)
	}
	return strings.Join(parts, ", ")
}

// rankRanges writes sorted ranks as "0-3,5".
func rankRanges(ranks []int) string {
	var b strings.Builder
	for i := 0; i < len(ranks); {
		j := i
		for j+1 < len(ranks) && ranks[j+1] == ranks[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", ranks[i], ranks[j])
		} else {
			fmt.Fprintf(&b, "%d", ranks[i])
		}
		i = j + 1
	}
	return b.String()
}

// allocEvents records what allocation a's report (a is stored already)
// tells about its job: a service replica running, every rank of a gang's
// attempt running, a new checkpoint.
func allocEvents(txn *memdb.Txn, index uint64, a *api.Allocation, started, newCheckpoint bool, now time.Time) error {
	if !started && !newCheckpoint {
		return nil
	}
	raw, _ := txn.First(tableJobs, "id", a.JobID)
	if raw == nil || raw.(*api.Job).Terminal() {
		return nil
	}
	j := *raw.(*api.Job)
	n := len(j.Events)
	switch {
	case !started:
	case j.Service:
		addEvent(&j, index, now, api.EventStarted, fmt.Sprintf("replica %d running on %s (version %d)", a.Rank, a.Node, a.JobVersion))
	case a.Attempt == j.RestartCount:
		running := 0
		for _, o := range collect[*api.Allocation](nil, txn, tableAllocs, "job", j.ID) {
			if o.Attempt == j.RestartCount && o.Status == api.AllocRunning {
				running++
			}
		}
		if running == j.Spec.Replicas {
			msg := fmt.Sprintf("all %d ranks running", running)
			if running == 1 {
				msg = "running on " + a.Node
			}
			if j.RestartCount > 0 {
				msg += fmt.Sprintf(" (attempt %d)", j.RestartCount)
			}
			addEvent(&j, index, now, api.EventStarted, msg)
		}
	}
	if newCheckpoint {
		cp := a.LastCheckpoint
		addEvent(&j, index, now, api.EventCheckpoint, fmt.Sprintf("step %d: %s", cp.Step, cp.URI))
	}
	if len(j.Events) == n && !newCheckpoint {
		return nil
	}
	j.ModifyIndex = index
	if err := txn.Insert(tableJobs, &j); err != nil {
		return err
	}
	return setIndex(txn, tableJobs, index)
}
