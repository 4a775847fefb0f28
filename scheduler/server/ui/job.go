package ui

import (
	"context"
	"sort"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// The job page: the job's status and reasons, its events, its allocations per rank,
// the last lines of rank 0's stdout with the trainer's loss and tokens/s
// drawn from them, and a service's endpoint and replicas.

type jobPage struct {
	*api.Job
	Allocs   []*api.Allocation
	GPUs     string
	Endpoint string // a service's stable address, through any server
	Log      []string
	LogError string
	Loss     *chart
	TPS      *chart
	// Recent are the job's events, newest first.
	Recent []api.JobEvent
}

// logLines is how many of the log's last lines the page shows.
const logLines = 40

// logTimeout bounds how long a page waits for an agent's log.
const logTimeout = 5 * time.Second

func buildJob(ctx context.Context, src Source, j *api.Job) jobPage {
	p := jobPage{Job: j, GPUs: heldGPUs(j), Allocs: append([]*api.Allocation(nil), j.Allocations...)}
	sort.Slice(p.Allocs, func(i, k int) bool {
		a, b := p.Allocs[i], p.Allocs[k]
		if a.Rank != b.Rank {
			return a.Rank < b.Rank
		}
		return a.CreateIndex > b.CreateIndex // the current attempt first
	})
	if j.Service {
		p.Endpoint = "/v1/services/" + j.ID + "/"
	}
	for i := len(j.Events) - 1; i >= 0; i-- {
		p.Recent = append(p.Recent, j.Events[i])
	}
	if len(j.Allocations) == 0 {
		return p
	}
	ctx, cancel := context.WithTimeout(ctx, logTimeout)
	defer cancel()
	t := newLogTail(logLines)
	err := src.JobLog(ctx, j.ID, 0, t)
	t.Close()
	if err != nil {
		p.LogError = err.Error()
	}
	p.Log = t.last()
	p.Loss = newChart("loss", t.loss)
	p.TPS = newChart("tokens/s per rank", t.tps)
	return p
}
