package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/state"
)

// A service's stable endpoint: every server answers
// /v1/services/{job}/PATH by forwarding to a ready replica of the job
// (api.Allocation.Ready, reported by its agent's health check) chosen by
// least outstanding requests through this server, streaming the answer
// back as it comes. The caller's token must see the job's namespace, and
// it is not passed on. A request is tried on another replica only when
// it got no answer from the first (a replica that died or stopped): a
// body up to maxReplayBody is kept for that, a longer one is retried only
// when none of it was sent. A service with no ready replica answers 503
// with why.

// serviceProxy counts the requests each replica has in flight through
// this server. Its zero value is ready to use.
type serviceProxy struct {
	mu       sync.Mutex
	inflight map[string]int // by allocation ID
	// affinity is, by allocation ID, the models (adapters) each replica
	// answered a request for: it has them loaded (adapters load on first
	// use), so later requests naming one prefer it.
	affinity map[string]map[string]bool
	once     sync.Once
	client   *http.Client
}

// replicaTarget is a ready replica's address.
type replicaTarget struct {
	alloc *api.Allocation
	addr  string
}

func (p *serviceProxy) httpClient() *http.Client {
	p.once.Do(func() {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil // replicas are reached directly
		p.client = &http.Client{Transport: tr,
			// A replica's redirect is the caller's to follow.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	})
	return p.client
}

// affinitySlack is how many more requests in flight a replica that has
// the request's model loaded may have than the least loaded one and still
// be preferred (a cold adapter load costs more than a short wait).
const affinitySlack = 1

// pick takes the ready replica with the fewest requests in flight (the
// lowest rank on a tie) among those not tried, preferring one that has
// model loaded within affinitySlack of it, and counts one more on it;
// done gives it back.
func (p *serviceProxy) pick(targets []replicaTarget, tried map[string]bool, model string) (t *replicaTarget, done func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inflight == nil {
		p.inflight = map[string]int{}
	}
	better := func(c, t *replicaTarget) bool {
		return t == nil || p.inflight[c.alloc.ID] < p.inflight[t.alloc.ID] ||
			(p.inflight[c.alloc.ID] == p.inflight[t.alloc.ID] && c.alloc.Rank < t.alloc.Rank)
	}
	var warm *replicaTarget // the best replica with model loaded
	for i := range targets {
		c := &targets[i]
		if tried[c.alloc.ID] {
			continue
		}
		if better(c, t) {
			t = c
		}
		if model != "" && p.affinity[c.alloc.ID][model] && better(c, warm) {
			warm = c
		}
	}
	if t == nil {
		return nil, nil
	}
	if warm != nil && p.inflight[warm.alloc.ID] <= p.inflight[t.alloc.ID]+affinitySlack {
		t = warm
	}
	id := t.alloc.ID
	p.inflight[id]++
	return t, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.inflight[id]--; p.inflight[id] <= 0 {
			delete(p.inflight, id)
		}
	}
}

// answered records that replica id answered a request for model, and
// forgets the replicas no longer among targets.
func (p *serviceProxy) answered(id, model string, targets []replicaTarget) {
	if model == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.affinity == nil {
		p.affinity = map[string]map[string]bool{}
	}
	if p.affinity[id] == nil {
		p.affinity[id] = map[string]bool{}
	}
	p.affinity[id][model] = true
	if len(p.affinity) > 2*len(targets) {
		live := map[string]bool{}
		for _, t := range targets {
			live[t.alloc.ID] = true
		}
		for a := range p.affinity {
			if !live[a] {
				delete(p.affinity, a)
			}
		}
	}
}

// requestModel is the model (base or adapter) an OpenAI-style request
// body names, or "".
func requestModel(body []byte) string {
	if len(body) == 0 || body[0] != '{' {
		return ""
	}
	var v struct {
		Model string `json:"model"`
	}
	if json.Unmarshal(body, &v) != nil || len(v.Model) > 256 {
		return ""
	}
	return v.Model
}

// readyReplicas are a service's replicas that serve and passed their
// health check, with their addresses; why says what is missing when there
// are none.
func readyReplicas(snap *state.Snapshot, j *api.Job) (out []replicaTarget, why string) {
	if !j.Service {
		return nil, fmt.Sprintf("job %s is a %s job, not a service", j.ID, j.Kind)
	}
	if j.Status != api.JobRunning {
		return nil, fmt.Sprintf("service %s is %s", j.ID, j.Status)
	}
	serving := 0
	for _, a := range snap.AllocsByJob(nil, j.ID) {
		if !a.Serving() {
			continue
		}
		serving++
		n := snap.Node(nil, a.NodeID)
		if !a.Ready || a.Port == 0 || n == nil || n.Status != api.NodeReady {
			continue
		}
		out = append(out, replicaTarget{alloc: a, addr: net.JoinHostPort(n.Address, strconv.Itoa(a.Port))})
	}
	if len(out) == 0 {
		why = fmt.Sprintf("service %s has no ready replica (%d of %d placed, none passed its health check)", j.ID, serving, j.Spec.Replicas)
		if j.Spec.Replicas == 0 {
			why = fmt.Sprintf("service %s is scaled to zero", j.ID)
		}
	}
	return out, why
}

// hopHeaders are a connection's own, never forwarded (RFC 9110 7.6.1),
// with the caller's Ark token.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer",
	"Transfer-Encoding", "Upgrade", "Authorization"}

// maxReplayBody is the largest request body the endpoint keeps to send
// again to another replica (a completion request is a few KiB).
const maxReplayBody = 1 << 20

// countingReader counts what was read of a request body: a request may be
// retried only while it is 0.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

func (s *Server) handleService(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("job")
	p := principalOf(r.Context())
	snap := s.store.Snapshot()
	j := snap.Job(nil, id)
	if err := p.jobAccess(j, id, api.CapServices); err != nil {
		s.fail(w, r, err)
		return
	}
	if j.Spec.Task.Builtin != nil && managementPath(r.Method, r.PathValue("rest")) {
		s.fail(w, r, forbid("the endpoint does not forward %s /%s to a builtin replica: manage adapters with POST|DELETE /v1/jobs/%s/adapters (ark job adapter), rules with ark job update",
			r.Method, r.PathValue("rest"), id))
		return
	}
	if !s.serviceAllowed(w, j) {
		return
	}
	targets, why := readyReplicas(snap, j)
	if len(targets) == 0 && j.Service && j.Status == api.JobRunning && j.Spec.Replicas == 0 && j.Spec.Autoscale != nil {
		// Scaled to zero: the leader wakes it and this request waits.
		if s.forwardBody(w, r, maxReplayBody, true) {
			return
		}
		if err := s.wakeService(r.Context(), j); err != nil {
			s.fail(w, r, err)
			return
		}
		snap = s.store.Snapshot()
		if cur := snap.Job(nil, id); cur != nil {
			targets, why = readyReplicas(snap, cur)
		}
	}
	if len(targets) == 0 {
		writeError(w, http.StatusServiceUnavailable, errors.New(why))
		return
	}
	// A body that fits in memory is kept, so that a replica that fails
	// before it answers (it died, or stopped between the pick and the
	// connection) can be replaced by another with the whole request.
	var kept []byte
	if r.ContentLength >= 0 && r.ContentLength <= maxReplayBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxReplayBody+1))
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("read request body: %w", err))
			return
		}
		kept = b
	}
	tried := map[string]bool{}
	model := requestModel(kept)
	var lastErr error
	for {
		t, done := s.svc.pick(targets, tried, model)
		if t == nil {
			writeError(w, http.StatusServiceUnavailable, fmt.Errorf("service %s: no ready replica answered: %w", id, lastErr))
			return
		}
		tried[t.alloc.ID] = true
		body := &countingReader{r: r.Body}
		if kept != nil {
			body.r = bytes.NewReader(kept)
		}
		resp, err := s.forwardService(r, t, body)
		if err != nil {
			done()
			lastErr = fmt.Errorf("replica %d (%s): %w", t.alloc.Rank, t.addr, err)
			if (kept != nil || body.n == 0) && r.Context().Err() == nil {
				continue // no answer came: another replica takes the request whole
			}
			writeError(w, http.StatusBadGateway, lastErr)
			return
		}
		if resp.StatusCode < 400 {
			s.svc.answered(t.alloc.ID, model, targets)
		}
		streamBack(w, resp)
		resp.Body.Close()
		done()
		return
	}
}

// forwardService sends r to replica t, its body read through body.
func (s *Server) forwardService(r *http.Request, t *replicaTarget, body *countingReader) (*http.Response, error) {
	url := "http://" + t.addr + "/" + r.PathValue("rest")
	if r.URL.RawQuery != "" {
		url += "?" + r.URL.RawQuery
	}
	var rb io.Reader
	if r.ContentLength != 0 {
		rb = io.NopCloser(body) // a failed round trip must not close the caller's body
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, url, rb)
	if err != nil {
		return nil, err
	}
	out.ContentLength = r.ContentLength
	out.Header = r.Header.Clone()
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		out.Header.Add("X-Forwarded-For", host)
	}
	out.Header.Set("X-Ark-Replica", strconv.Itoa(t.alloc.Rank))
	return s.svc.httpClient().Do(out)
}

// streamBack copies a replica's answer to the caller, flushing each read
// (server-sent events and streamed completions arrive as they are made).
func streamBack(w http.ResponseWriter, resp *http.Response) {
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	for _, h := range hopHeaders {
		w.Header().Del(h)
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return // the caller left
			}
			_ = rc.Flush()
		}
		if err != nil {
			return
		}
	}
}
