package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/hashicorp/go-memdb"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/server/ui"
	"github.com/ark-sched/ark/scheduler/state"
)

// The dashboard (package ui) under /ui/. Its shells and assets hold no
// data and need no token; its fragments pass the same access check as
// GET /v1/nodes, and what they show is filtered by the caller as the API
// filters it (uiSource).

func (s *Server) uiRoutes(mux *routeMux) {
	d := ui.New(uiSource{s})
	mux.HandleFunc("GET /ui/", d.Shell)
	mux.HandleFunc("GET /ui/data/{page}", s.auth(anyToken, s.readHandler(d.Data)))
}

// uiSource is the server's state as the caller in a request's context may
// see it.
type uiSource struct{ s *Server }

func (u uiSource) View(ctx context.Context, index uint64) (*ui.View, error) {
	s := u.s
	p := principalOf(ctx)
	var v *ui.View
	_, err := s.store.Blocking(ctx, index, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, error) {
		v = &ui.View{Index: max(snap.LatestIndex(), 1), Nodes: publicNodes(snap.Nodes(ws))}
		byJob := map[string][]*api.Allocation{}
		for _, a := range snap.Allocs(ws) {
			byJob[a.JobID] = append(byJob[a.JobID], a)
		}
		for _, j := range snap.Jobs(ws) {
			if !p.canNamespace(j.Namespace) {
				for _, a := range byJob[j.ID] {
					if !a.Terminal() {
						// Only where and how much: no job, namespace or queue.
						v.Hidden = append(v.Hidden, &api.Allocation{NodeID: a.NodeID, Node: a.Node, GPUs: a.GPUs, GPUMilli: a.GPUMilli, Status: a.Status, DesiredStatus: a.DesiredStatus})
					}
				}
				continue
			}
			c := *j
			c.Allocations = byJob[j.ID]
			v.Jobs = append(v.Jobs, &c)
		}
		for _, q := range s.queueStatuses(snap, p.canNamespace) {
			v.Queues = append(v.Queues, ui.Queue{Name: q.Name, QuotaGPUs: q.QuotaGPUs, Weight: q.Weight, Borrow: q.Borrow,
				UsedGPUs: q.UsedGPUs, BorrowedGPUs: q.BorrowedGPUs, RunningJobs: q.RunningJobs, PendingJobs: q.PendingJobs})
		}
		return v.Index, nil
	})
	return v, err
}

// JobLog runs the API's own log handler in process, so that the
// dashboard's log passes the same check (jobAccess with CapLogs) and the
// same path to the agent as GET /v1/jobs/{id}/logs.
func (u uiSource) JobLog(ctx context.Context, jobID string, rank int, w io.Writer) error {
	target := "/v1/jobs/" + url.PathEscape(jobID) + "/logs?rank=" + strconv.Itoa(rank)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	req.SetPathValue("id", jobID)
	sink := &logSink{w: w, header: http.Header{}}
	u.s.handleJobLogs(sink, req)
	if sink.code != http.StatusOK {
		var e api.Error
		if json.Unmarshal(sink.failure, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("logs answered %d", sink.code)
	}
	return nil
}

// logSink is the ResponseWriter JobLog hands the log handler: a log goes
// on to w, an error answer is kept (bounded) to be returned.
type logSink struct {
	w       io.Writer
	header  http.Header
	code    int
	failure []byte
}

func (l *logSink) Header() http.Header { return l.header }

func (l *logSink) WriteHeader(code int) {
	if l.code == 0 {
		l.code = code
	}
}

func (l *logSink) Write(b []byte) (int, error) {
	l.WriteHeader(http.StatusOK)
	if l.code == http.StatusOK {
		return l.w.Write(b)
	}
	if room := 4096 - len(l.failure); room > 0 {
		l.failure = append(l.failure, b[:min(len(b), room)]...)
	}
	return len(b), nil
}
