package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-memdb"
	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/cluster"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/scheduler/state"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 1 << 20

// maxWait bounds how long a blocking query may wait.
const maxWait = 5 * time.Minute

func (s *Server) routes() http.Handler {
	mux := newRouteMux()
	mux.HandleFunc("POST /v1/jobs", s.auth(jobsAccess, s.writeHandler(s.handleSubmitJob)))
	mux.HandleFunc("GET /v1/jobs", s.auth(jobsAccess, s.readHandler(s.handleListJobs)))
	mux.HandleFunc("POST /v1/jobs/validate", s.auth(jobsAccess, s.writeHandler(s.handleValidateJob)))
	mux.HandleFunc("GET /v1/jobs/{id}", s.auth(jobsAccess, s.readHandler(s.handleGetJob)))
	mux.HandleFunc("DELETE /v1/jobs/{id}", s.auth(jobsAccess, s.writeHandler(s.handleCancelJob)))
	mux.HandleFunc("PUT /v1/jobs/{id}", s.auth(jobsAccess, s.writeHandler(s.handleUpdateJob)))
	mux.HandleFunc("POST /v1/jobs/{id}/promote", s.auth(jobsAccess, s.writeHandler(s.handlePromoteJob)))
	mux.HandleFunc("GET /v1/jobs/{id}/versions", s.auth(jobsAccess, s.readHandler(s.handleJobVersions)))
	mux.HandleFunc("GET /v1/jobs/{id}/logs", s.auth(jobsAccess, s.handleJobLogs))
	mux.HandleFunc("/v1/services/{job}/{rest...}", s.auth(jobsAccess, s.handleService))
	mux.HandleFunc("POST /v1/jobs/{id}/adapters", s.auth(jobsAccess, s.writeHandler(s.handleAddServiceAdapter)))
	mux.HandleFunc("GET /v1/jobs/{id}/adapters", s.auth(jobsAccess, s.readHandler(s.handleServiceAdapterStates)))
	mux.HandleFunc("DELETE /v1/jobs/{id}/adapters/{name}", s.auth(jobsAccess, s.writeHandler(s.handleRemoveServiceAdapter)))
	mux.HandleFunc("POST /v1/nodes/register", s.auth(agentAccess, s.writeHandler(s.handleRegisterNode)))
	mux.HandleFunc("GET /v1/nodes", s.auth(anyToken, s.readHandler(s.handleListNodes)))
	mux.HandleFunc("GET /v1/nodes/{id}", s.auth(anyToken, s.readHandler(s.handleGetNode)))
	mux.HandleFunc("PUT /v1/nodes/{id}/heartbeat", s.auth(nodeAccess, s.writeHandler(s.handleHeartbeat)))
	mux.HandleFunc("PUT /v1/nodes/{id}/drain", s.auth(mgmtAccess, s.writeHandler(s.handleDrain)))
	mux.HandleFunc("PUT /v1/nodes/{id}/eligibility", s.auth(mgmtAccess, s.writeHandler(s.handleEligibility)))
	mux.HandleFunc("GET /v1/nodes/{id}/allocations", s.auth(nodeAccess, s.readHandler(s.handleNodeAllocations)))
	mux.HandleFunc("GET /v1/allocations/{id}", s.auth(nodeAccess, s.readHandler(s.handleGetAlloc)))
	mux.HandleFunc("PUT /v1/allocations/{id}/status", s.auth(nodeAccess, s.writeHandler(s.handleAllocStatus)))
	mux.HandleFunc("GET /v1/status/leader", s.handleLeader)
	mux.HandleFunc("GET /v1/queues", s.auth(anyToken, s.handleQueues))
	mux.HandleFunc("GET /v1/operator/raft/self", s.auth(mgmtAccess, s.handleSelf))
	mux.HandleFunc("POST /v1/operator/raft/join", s.auth(mgmtAccess, s.writeHandler(s.handleJoin)))
	mux.HandleFunc("GET /v1/operator/raft/peers", s.auth(mgmtAccess, s.handlePeers))
	mux.HandleFunc("DELETE /v1/operator/raft/peers/{id}", s.auth(mgmtAccess, s.writeHandler(s.handleRemovePeer)))
	mux.HandleFunc("GET /v1/operator/snapshot", s.auth(mgmtAccess, s.streamWriteHandler(0, s.handleSnapshotSave)))
	mux.HandleFunc("PUT /v1/operator/snapshot", s.auth(mgmtAccess, s.streamWriteHandler(s.snapshotLimit(), s.handleSnapshotRestore)))
	if s.cfg.EnableDebug {
		mux.HandleFunc("GET /debug/pprof/", s.auth(mgmtAccess, pprof.Index))
		mux.HandleFunc("GET /debug/pprof/profile", s.auth(mgmtAccess, pprof.Profile))
		mux.HandleFunc("GET /debug/pprof/trace", s.auth(mgmtAccess, pprof.Trace))
	}
	s.aclRoutes(mux)
	s.modelRoutes(mux)
	s.keyRoutes(mux)
	s.metricsRoutes(mux)
	s.uiRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no route %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// httpError carries a status code with an error.
type httpError struct {
	code int
	err  error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func statusOf(err error) int {
	var he *httpError
	var mbe *http.MaxBytesError
	var fe spec.Errors
	switch {
	case errors.As(err, &he):
		return he.code
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.As(err, &fe):
		return http.StatusBadRequest
	case errors.Is(err, state.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, state.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, cluster.ErrNotLeader), errors.Is(err, cluster.ErrNoLeader), errors.Is(err, cluster.ErrShutdown),
		errors.Is(err, cluster.ErrBusy):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, code int, err error) {
	body := api.Error{Error: err.Error()}
	var fe spec.Errors
	if errors.As(err, &fe) {
		body.Fields = fe
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		body.Error = fmt.Sprintf("request body is larger than the limit of %d bytes", mbe.Limit)
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	if c, ok := v.(compactJSON); ok {
		v = c.v
	} else {
		enc.SetIndent("", "  ")
	}
	_ = enc.Encode(v)
}

// compactJSON is an answer written without indentation: a list of
// thousands of nodes, where indenting took half the bytes (29 MB instead
// of 14 MB at 10,000 nodes) and about half the time (BenchmarkListNodes).
type compactJSON struct{ v any }

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		// The client went away (an agent's attempt timed out, a CLI was
		// interrupted): nobody reads the answer, and it is not the
		// server's failure.
		s.log.Debug("client went away", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		writeError(w, statusClientClosed, errors.New("client closed the request"))
		return
	}
	code := statusOf(err)
	if code == http.StatusServiceUnavailable {
		if errors.Is(err, cluster.ErrNotLeader) {
			id, addr := s.raft.Leader()
			if id == "" {
				err = fmt.Errorf("%w; retry shortly", cluster.ErrNoLeader)
			} else {
				err = fmt.Errorf("this server is not the leader; the leader is %s (raft %s)", id, addr)
			}
		}
		// Every 503 is worth trying again (no leader, an election, a
		// leader too busy to take the write): say when.
		w.Header().Set("Retry-After", retryAfterUnavailable)
	}
	if code >= 500 {
		s.log.Warn("request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", code), zap.Error(err))
	}
	writeError(w, code, err)
}

// statusClientClosed answers a request whose client went away (nginx's
// 499): no one reads it, but logs and metrics do not count it as a 500.
const statusClientClosed = 499

// retryAfterUnavailable is a 503's Retry-After, in seconds: an election
// takes about one Raft election timeout (500 ms x --raft-multiplier), and
// clients add jitter (scheduler/api/client).
const retryAfterUnavailable = "1"

// readBody reads a bounded request body.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// withDeadlines' body timeout: a client that trickles its body.
			w.Header().Set("Connection", "close")
			return nil, &httpError{http.StatusRequestTimeout, fmt.Errorf("request body did not arrive in time: %w", err)}
		}
		return nil, &httpError{http.StatusBadRequest, fmt.Errorf("read request body: %w", err)}
	}
	return body, nil
}

// decodeJSON decodes a bounded body strictly into v.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &httpError{http.StatusBadRequest, fmt.Errorf("invalid JSON body: %w", err)}
	}
	if dec.More() {
		return &httpError{http.StatusBadRequest, errors.New("invalid JSON body: trailing data after the object")}
	}
	return nil
}

// blockingParams reads ?index=N&wait=D.
func blockingParams(r *http.Request) (uint64, time.Duration, error) {
	q := r.URL.Query()
	var idx uint64
	if v := q.Get("index"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, &httpError{http.StatusBadRequest, fmt.Errorf("query parameter index: want a non-negative integer, got %q", v)}
		}
		idx = n
	}
	wait := 30 * time.Second
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return 0, 0, &httpError{http.StatusBadRequest, fmt.Errorf("query parameter wait: want a duration such as 30s, got %q", v)}
		}
		wait = min(d, maxWait)
	}
	return idx, wait, nil
}

// blocking answers a read, waiting for an index above ?index= when given.
func (s *Server) blocking(w http.ResponseWriter, r *http.Request, query func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error)) {
	minIdx, wait, err := blockingParams(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	var out any
	idx, err := s.store.Blocking(ctx, minIdx, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, error) {
		i, v, err := query(ws, snap)
		out = v
		return i, err
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set(api.IndexHeader, strconv.FormatUint(max(idx, 1), 10))
	writeJSON(w, http.StatusOK, out)
}

// submittedSpec reads and parses a job spec from the request body and
// checks that the caller may submit it (submit and validate alike), with
// its catalog references resolved (models_resolve.go); it answers the
// error itself and returns ok false.
func (s *Server) submittedSpec(w http.ResponseWriter, r *http.Request) (*spec.Job, []api.ModelRef, bool) {
	return s.requestSpec(w, r, nil)
}

// requestSpec parses, resolves and authorizes the spec in r's body: a new
// job's, or a new version of the spec replacing (updateJob).
func (s *Server) requestSpec(w http.ResponseWriter, r *http.Request, replacing *spec.Job) (*spec.Job, []api.ModelRef, bool) {
	body, err := readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return nil, nil, false
	}
	js, err := spec.Parse(body)
	if err != nil {
		var fe spec.Errors
		if !errors.As(err, &fe) {
			err = &httpError{http.StatusBadRequest, err}
		}
		s.fail(w, r, err)
		return nil, nil, false
	}
	// Resolved before the ACL check, so that the checkpoints a
	// reference names are read-checked like any other.
	snap := s.store.Snapshot()
	refs, err := resolveModels(snap, js)
	if err != nil {
		s.fail(w, r, err)
		return nil, nil, false
	}
	if es := adapterBaseErrors(snap, js, baseRefOf(refs), refs); len(es) > 0 {
		s.fail(w, r, es)
		return nil, nil, false
	}
	if err := s.authorizeSpec(principalOf(r.Context()), js, replacing); err != nil {
		s.fail(w, r, err)
		return nil, nil, false
	}
	return js, refs, true
}

func (s *Server) handleSubmitJob(w http.ResponseWriter, r *http.Request) {
	js, refs, ok := s.submittedSpec(w, r)
	if !ok {
		return
	}
	token := r.Header.Get(api.IdempotencyHeader)
	if len(token) > 128 {
		s.fail(w, r, &httpError{http.StatusBadRequest, fmt.Errorf("%s header is longer than 128 characters", api.IdempotencyHeader)})
		return
	}
	if token != "" {
		// Keys are the namespace's own: another tenant who learns or
		// guesses a key must not be able to squat it. Scoping it here,
		// not in the FSM, keeps old log entries replaying as they did.
		token = js.Namespace + "/" + token
	}
	if max := s.lim.NamespaceMaxJobs; max > 0 {
		if n := s.store.Snapshot().CountUnfinished(js.Namespace, max); n >= max {
			s.fail(w, r, &httpError{http.StatusForbidden, fmt.Errorf("namespace %q has %d unfinished jobs, its limit: wait for some to end or cancel some", js.Namespace, n)})
			return
		}
	}
	if err := s.ensureNamespaceKey(r.Context(), js.Namespace); err != nil {
		s.fail(w, r, err)
		return
	}
	job := &api.Job{
		SubmitToken: token,
		Name:        js.Name,
		Namespace:   js.Namespace,
		Queue:       js.Queue,
		Kind:        js.Kind,
		Priority:    js.Priority,
		Spec:        *js,
		SubmitTime:  time.Now().UTC(),
		// Inference replicas live and restart one by one; the FSM
		// reads the flag, so older entries replay as gangs.
		Service: js.Kind == spec.KindInference,
		Models:  refs,
	}
	var reg *state.RegisterJobResponse
	var idx uint64
	// A job ID is the name and 24 random bits, short enough to type: at
	// thousands of jobs two of the same name collide now and then (the
	// birthday bound), and the FSM refuses the second. That is the
	// server's pick, not the caller's mistake, so it picks again.
	for attempt := 0; ; attempt++ {
		job.ID = js.Name + "-" + s.jobSuffix()
		item, err := state.EncodeRegisterJobItem(&state.RegisterJobRequest{Job: job})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		// Committed with the submissions that arrive with it, in one
		// entry (submit_batch.go); answered once that entry is.
		reg, idx, err = s.registrations.register(item)
		if errors.Is(err, state.ErrConflict) && attempt < maxIDAttempts-1 {
			continue
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		break
	}
	code := http.StatusCreated
	if reg.Existing {
		code = http.StatusOK
	}
	writeJSON(w, code, api.SubmitResponse{ID: reg.ID, Index: idx})
}

// withAllocs returns a copy of a job carrying its allocations.
func withAllocs(snap *state.Snapshot, ws memdb.WatchSet, j *api.Job) *api.Job {
	c := *j
	c.Allocations = snap.AllocsByJob(ws, j.ID)
	if c.Allocations == nil {
		c.Allocations = []*api.Allocation{}
	}
	return &c
}

func (s *Server) handleListJobs(w http.ResponseWriter, r *http.Request) {
	status := r.URL.Query().Get("status")
	p := principalOf(r.Context())
	s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		out := []*api.Job{}
		for _, j := range snap.Jobs(ws) {
			if (status == "" || j.Status == status) && p.canNamespace(j.Namespace) {
				c := withAllocs(snap, ws, j)
				c.Events = nil // a list stays small: GET /v1/jobs/{id} has them
				out = append(out, c)
			}
		}
		return max(snap.Index(state.TableJobs), snap.Index(state.TableAllocs)), out, nil
	})
}

func (s *Server) handleGetJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	p := principalOf(r.Context())
	s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		j := snap.Job(ws, id)
		if j == nil || !p.canNamespace(j.Namespace) {
			return 0, nil, hiddenJob(id)
		}
		return max(snap.Index(state.TableJobs), snap.Index(state.TableAllocs)), withAllocs(snap, ws, j), nil
	})
}

func (s *Server) handleCancelJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := principalOf(r.Context()).jobAccess(s.store.Snapshot().Job(nil, id), id, api.CapCancel); err != nil {
		s.fail(w, r, err)
		return
	}
	_, idx, err := s.apply(r.Context(), state.CancelJobType, &state.CancelJobRequest{
		JobID: id, Reason: "cancelled by user", Time: time.Now().UTC(), StopCause: api.AllocCancelled,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.SubmitResponse{ID: id, Index: idx})
}

func (s *Server) handleRegisterNode(w http.ResponseWriter, r *http.Request) {
	var n api.Node
	if err := decodeJSON(w, r, &n); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := validateNode(&n); err != nil {
		s.fail(w, r, err)
		return
	}
	secret, err := s.registration(r, s.store.Snapshot(), &n)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if n.ID == "" {
		n.ID = randomSuffix(8)
	}
	n.RegisterTime = time.Now().UTC()
	_, idx, err := s.apply(r.Context(), state.UpsertNodeType, &state.UpsertNodeRequest{Node: &n})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ttl, _ := s.hb.beat(n.ID)
	writeJSON(w, http.StatusOK, api.RegisterNodeResponse{
		ID: n.ID, HeartbeatTTL: ttl.String(), Index: idx, Secret: secret, LogsKey: s.nodeLogsKey(n.ID),
	})
}

func validateNode(n *api.Node) error {
	var es spec.Errors
	add := func(path, format string, args ...any) {
		es = append(es, spec.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if n.Name == "" {
		add("name", "is required")
	} else if len(n.Name) > 253 || strings.ContainsAny(n.Name, " /\t\n") {
		add("name", "must be a hostname-like name without spaces or slashes, got %q", n.Name)
	}
	if n.ID != "" && (len(n.ID) > 64 || strings.ContainsAny(n.ID, " /\t\n")) {
		add("id", "must be at most 64 characters without spaces or slashes, got %q", n.ID)
	}
	if n.Address == "" {
		add("address", "is required (the address ranks use to reach this node)")
	}
	for i, g := range n.GPUs {
		if g.Index != i {
			add(fmt.Sprintf("gpus[%d].index", i), "must be %d (GPUs are listed by index), got %d", i, g.Index)
		}
		if g.MemoryBytes < 0 {
			add(fmt.Sprintf("gpus[%d].memoryBytes", i), "must not be negative")
		}
	}
	if len(n.Fabric) > 63 || strings.ContainsAny(n.Fabric, " /\t\n") {
		add("fabric", "must be at most 63 characters without spaces or slashes, got %q", n.Fabric)
	}
	if n.CPUMilli <= 0 {
		add("cpuMilli", "must be > 0, got %d", n.CPUMilli)
	}
	if n.MemoryBytes <= 0 {
		add("memoryBytes", "must be > 0, got %d", n.MemoryBytes)
	}
	if len(es) > 0 {
		return es
	}
	return nil
}

// handleListNodes lists the nodes by name, all of them or, with
// ?per_page=N, a page at a time (nodes_page.go).
func (s *Server) handleListNodes(w http.ResponseWriter, r *http.Request) {
	pg, err := pageParams(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		nodes, next := pg.nodes(snap.Nodes(ws))
		w.Header().Del(api.NextTokenHeader)
		if next != "" {
			w.Header().Set(api.NextTokenHeader, next)
		}
		return snap.Index(state.TableNodes), compactJSON{publicNodes(nodes)}, nil
	})
}

// nodeByRef finds a node by ID or, failing that, by name.
func nodeByRef(ws memdb.WatchSet, snap *state.Snapshot, ref string) *api.Node {
	if n := snap.Node(ws, ref); n != nil {
		return n
	}
	return snap.NodeByName(ws, ref)
}

func (s *Server) handleGetNode(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("id")
	s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		n := nodeByRef(ws, snap, ref)
		if n == nil {
			return 0, nil, fmt.Errorf("node %q: %w", ref, state.ErrNotFound)
		}
		return snap.Index(state.TableNodes), publicNode(n), nil
	})
}

func (s *Server) handleHeartbeat(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !principalOf(r.Context()).canNode(id) {
		s.fail(w, r, forbiddenNode("node "+id))
		return
	}
	var req api.HeartbeatRequest // loads are optional: an empty body is a plain heartbeat
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	n := s.store.Snapshot().Node(nil, id)
	if n == nil {
		s.fail(w, r, fmt.Errorf("node %q is not registered; register it first: %w", id, state.ErrNotFound))
		return
	}
	if n.Status != api.NodeReady {
		// A node that was marked down and speaks again is ready again;
		// what it ran was already marked lost.
		_, _, err := s.apply(r.Context(), state.NodeStatusType, &state.NodeStatusRequest{
			NodeID: id, Status: api.NodeReady, Info: "heartbeat resumed", Time: time.Now().UTC(),
		})
		if err != nil {
			s.fail(w, r, err)
			return
		}
	}
	ttl, ok := s.hb.beat(id)
	if !ok {
		// Leadership moved (or the new leader has not armed its timers
		// yet) since this request was taken here: the beat was not
		// recorded, so the node must not be told it was.
		s.fail(w, r, fmt.Errorf("%w: heartbeat of node %q not recorded", cluster.ErrNotLeader, id))
		return
	}
	s.loads.put(nodeLoads(s.store.Snapshot(), id, req.Loads), time.Now())
	writeJSON(w, http.StatusOK, api.HeartbeatResponse{HeartbeatTTL: ttl.String()})
}

func (s *Server) handleNodeAllocations(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !principalOf(r.Context()).canNode(id) {
		s.fail(w, r, forbiddenNode("node "+id))
		return
	}
	s.awaitNode(r.Context(), id)
	s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		node := snap.Node(ws, id)
		if node == nil {
			return 0, nil, fmt.Errorf("node %q: %w", id, state.ErrNotFound)
		}
		allocs := snap.AllocsByNode(ws, id)
		if allocs == nil {
			allocs = []*api.Allocation{}
		}
		idx := nodeAllocsIndex(node, allocs)
		if presentsNodeSecret(r, node) {
			// Only the node's own agent gets its tasks' checkpoint keys.
			var err error
			if allocs, err = s.withCheckpointKeys(snap, allocs); err != nil {
				return 0, nil, err
			}
		}
		return idx, allocs, nil
	})
}

// nodeAllocsIndex is the index a node's allocation list answers with: the
// last write to the node or to one of its allocations, as Nomad's
// GetClientAllocs does. The allocation table's index moves with every
// node's writes; answering it made each agent's next long-poll return at
// once after any placement or report anywhere, so at 10,000 nodes the
// agents polled without pause. An allocation deleted by GC does not raise
// it (nothing the agent runs goes with it); the agent starts over when the
// index goes back.
func nodeAllocsIndex(node *api.Node, allocs []*api.Allocation) uint64 {
	idx := node.ModifyIndex
	for _, a := range allocs {
		idx = max(idx, a.ModifyIndex)
	}
	return idx
}

// registrationLag bounds how long a follower waits for a node it does not
// know yet before it answers 404.
const registrationLag = 2 * time.Second

// awaitNode waits, on a follower, until node id's registration is applied
// here (at most registrationLag): an agent's first long-poll often reaches
// a follower a moment before the leader's commit does, and a 404 makes the
// agent register again (454 extra registrations in a 1,000-node `ark
// bench cluster` run).
func (s *Server) awaitNode(ctx context.Context, id string) {
	if s.raft.IsLeader() || s.store.Snapshot().Node(nil, id) != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, registrationLag)
	defer cancel()
	_, _ = s.store.Blocking(ctx, 1, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, error) {
		if snap.Node(nil, id) != nil {
			return 2, nil
		}
		snap.WatchAll(ws)
		return 0, nil
	})
}

func (s *Server) handleGetAlloc(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	p := principalOf(r.Context())
	s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		a := snap.Alloc(ws, id)
		if a == nil {
			return 0, nil, fmt.Errorf("allocation %q: %w", id, state.ErrNotFound)
		}
		if !p.canNode(a.NodeID) {
			return 0, nil, forbiddenNode("allocation " + id)
		}
		return snap.Index(state.TableAllocs), a, nil
	})
}

func (s *Server) handleAllocStatus(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var u api.AllocStatusUpdate
	if err := decodeJSON(w, r, &u); err != nil {
		s.fail(w, r, err)
		return
	}
	switch u.Status {
	case api.AllocPending, api.AllocRunning, api.AllocSucceeded, api.AllocFailed:
	default:
		s.fail(w, r, spec.Errors{{Path: "status", Msg: fmt.Sprintf("must be one of pending, running, succeeded, failed, got %q", u.Status)}})
		return
	}
	u.Message = truncateUTF8(u.Message, 4096)
	u.Progress = truncateUTF8(u.Progress, 1024)
	if u.Checkpoint != nil && (u.Checkpoint.URI == "" || len(u.Checkpoint.URI) > 2048 || u.Checkpoint.Step < 0) {
		s.fail(w, r, spec.Errors{{Path: "checkpoint", Msg: "needs a uri (at most 2048 characters) and a step >= 0"}})
		return
	}
	if err := api.CheckEvals(u.Evals); err != nil {
		s.fail(w, r, &httpError{http.StatusBadRequest, err})
		return
	}
	if a := s.store.Snapshot().Alloc(nil, id); a == nil {
		s.fail(w, r, fmt.Errorf("allocation %q: %w", id, state.ErrNotFound))
		return
	} else if !principalOf(r.Context()).canNode(a.NodeID) {
		// A node reports only what runs on it: another node's (or a
		// tenant's) report could free GPUs whose process still runs.
		s.fail(w, r, forbiddenNode("allocation "+id))
		return
	}
	_, idx, err := s.apply(r.Context(), state.AllocStatusType, &state.AllocStatusRequest{AllocID: id, Update: u, Time: time.Now().UTC(), StopCause: api.AllocStopped})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]uint64{"index": idx})
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func (s *Server) handleLeader(w http.ResponseWriter, r *http.Request) {
	id, addr := s.leaderHTTP()
	if id == "" {
		s.fail(w, r, fmt.Errorf("%w; retry shortly", cluster.ErrNoLeader))
		return
	}
	writeJSON(w, http.StatusOK, api.LeaderResponse{Leader: id, Address: addr})
}
