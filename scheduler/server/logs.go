package server

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/ark-sched/ark/scheduler/api"
)

// handleJobLogs streams one rank's stdout or stderr from the agent that
// runs (or ran) it: GET /v1/jobs/{id}/logs?rank=N&stream=stdout&follow=true.
func (s *Server) handleJobLogs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q := r.URL.Query()
	rank := 0
	if v := q.Get("rank"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.fail(w, r, &httpError{http.StatusBadRequest, fmt.Errorf("query parameter rank: want a non-negative integer, got %q", v)})
			return
		}
		rank = n
	}
	stream := q.Get("stream")
	if stream == "" {
		stream = "stdout"
	}
	if stream != "stdout" && stream != "stderr" {
		s.fail(w, r, &httpError{http.StatusBadRequest, fmt.Errorf("query parameter stream: want stdout or stderr, got %q", stream)})
		return
	}
	snap := s.store.Snapshot()
	job := snap.Job(nil, id)
	if err := principalOf(r.Context()).jobAccess(job, id, api.CapLogs); err != nil {
		s.fail(w, r, err)
		return
	}
	var alloc *api.Allocation
	for _, a := range snap.AllocsByJob(nil, id) {
		if a.Rank == rank && (alloc == nil || a.CreateIndex > alloc.CreateIndex) {
			alloc = a
		}
	}
	if alloc == nil {
		s.fail(w, r, &httpError{http.StatusNotFound, fmt.Errorf("job %s has no allocation for rank %d (status %s)", id, rank, job.Status)})
		return
	}
	node := snap.Node(nil, alloc.NodeID)
	if node == nil || node.AgentAddr == "" {
		s.fail(w, r, &httpError{http.StatusBadGateway, fmt.Errorf("node %s of rank %d serves no logs", alloc.Node, rank)})
		return
	}
	u := url.URL{Scheme: s.tls.scheme, Host: node.AgentAddr, Path: "/v1/allocations/" + alloc.ID + "/logs",
		RawQuery: url.Values{"stream": {stream}, "follow": {q.Get("follow")}}.Encode()}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u.String(), nil)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// The node's own logs key, never a token the API accepts: an agent (or
	// an impostor that registered a node) learns nothing it could use.
	if key := s.nodeLogsKey(node.ID); key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := s.tls.agent.Do(req)
	if err != nil {
		s.fail(w, r, &httpError{http.StatusBadGateway, fmt.Errorf("reach agent of node %s at %s: %w", node.Name, node.AgentAddr, err)})
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	flushCopy(w, resp.Body)
}

// flushCopy copies src to w, flushing after every read so followed logs
// arrive as they are written.
func flushCopy(w http.ResponseWriter, src io.Reader) {
	f, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if f != nil {
				f.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}
