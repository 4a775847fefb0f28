package server

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/scheduler/state"
)

// The model catalog's API, under /v1/models. A model belongs to a
// namespace (?namespace=, default "default"): its tokens with read may
// list and show it, with submit register versions, remove them and record
// evaluations. A public model may be read from every namespace. A model
// the caller may not read is not found (its existence is not revealed).
func (s *Server) modelRoutes(mux *routeMux) {
	mux.HandleFunc("GET /v1/models", s.auth(jobsAccess, s.readHandler(s.handleListModels)))
	mux.HandleFunc("GET /v1/models/{name}", s.auth(jobsAccess, s.readHandler(s.handleGetModel)))
	mux.HandleFunc("POST /v1/models", s.auth(jobsAccess, s.writeHandler(s.handleRegisterModel)))
	mux.HandleFunc("DELETE /v1/models/{name}", s.auth(jobsAccess, s.writeHandler(s.handleDeleteModel)))
	mux.HandleFunc("POST /v1/models/{name}/evals", s.auth(jobsAccess, s.writeHandler(s.handleModelEvals)))
}

func namespaceParam(r *http.Request) string {
	if ns := r.URL.Query().Get("namespace"); ns != "" {
		return ns
	}
	return "default"
}

// modelVisible reports whether p may read m.
func modelVisible(p principal, m *api.Model) bool {
	return m != nil && (m.Public || p.can(m.Namespace, api.CapRead))
}

func hiddenModel(ns, name string) error {
	return fmt.Errorf("model %q in namespace %q: %w", name, ns, state.ErrNotFound)
}

func (s *Server) handleListModels(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r.Context())
	ns := r.URL.Query().Get("namespace")
	out := []*api.Model{}
	for _, m := range s.store.Snapshot().Models(nil) {
		if modelVisible(p, m) && (ns == "" || m.Namespace == ns) {
			out = append(out, m)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetModel(w http.ResponseWriter, r *http.Request) {
	ns, name := namespaceParam(r), r.PathValue("name")
	m := s.store.Snapshot().Model(nil, ns, name)
	if !modelVisible(principalOf(r.Context()), m) {
		s.fail(w, r, hiddenModel(ns, name))
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// mayWriteModel checks that p may change models of ns.
func mayWriteModel(p principal, ns string) error {
	if !p.can(ns, api.CapSubmit) {
		if !p.canNamespace(ns) {
			return forbid("this token may not act in namespace %q", ns)
		}
		return forbid("this token lacks capability %q in namespace %q, which changing its models needs", api.CapSubmit, ns)
	}
	return nil
}

func (s *Server) handleRegisterModel(w http.ResponseWriter, r *http.Request) {
	var req api.ModelRegisterRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Namespace == "" {
		req.Namespace = "default"
	}
	if err := checkModelRegister(&req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := mayWriteModel(principalOf(r.Context()), req.Namespace); err != nil {
		s.fail(w, r, err)
		return
	}
	resp, _, err := s.apply(r.Context(), state.ModelRegisterType, &state.ModelRegisterRequest{Model: req, Time: time.Now().UTC()})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// checkModelRegister is the leader's check of a registration: what the
// FSM takes as given.
func checkModelRegister(req *api.ModelRegisterRequest) error {
	var es spec.Errors
	add := func(path, format string, args ...any) {
		es = append(es, spec.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if err := spec.ValidModelName(req.Name); err != nil {
		add("name", "%v", err)
	}
	if err := spec.ValidLabel(req.Namespace); err != nil {
		add("namespace", "%v", err)
	}
	if p := req.Arch.Preset; p != "" && !slices.Contains(spec.BuiltinModels, p) {
		add("arch.preset", "unknown builtin model %q; the builtin models are %v", p, spec.BuiltinModels)
	}
	if req.URI != "" {
		if spec.IsModelRef(req.URI) {
			add("uri", "must be a checkpoint (file://, s3:// or a path), not a catalog reference")
		} else if err := spec.CheckCheckpointLocation(req.URI); err != nil {
			add("uri", "%v", err)
		}
	}
	if req.URI == "" && (req.Adapter || req.Lineage != nil || req.Checksum != "") {
		add("uri", "is required with adapter, lineage or checksum (they describe a version)")
	}
	if l := req.Lineage; l != nil {
		switch l.Method {
		case "", api.MethodFull, api.MethodLoRA, api.MethodImported:
		default:
			add("lineage.method", "must be full, lora or imported, got %q", l.Method)
		}
		// A parent is a catalog version (NAME@V) or, for a base that is
		// not in the catalog, its checkpoint.
		if p := l.Parent; p != "" && !strings.Contains(p, "://") && !strings.HasPrefix(p, "/") {
			if _, err := spec.ParseModelRef(p); err != nil {
				add("lineage.parent", "%v", err)
			}
		}
	}
	for path, v := range map[string]string{"description": req.Description, "provider": req.Provider, "license": req.License} {
		if len(v) > 4096 {
			add(path, "is longer than 4096 bytes")
		}
	}
	if len(es) > 0 {
		return es
	}
	return nil
}

func (s *Server) handleDeleteModel(w http.ResponseWriter, r *http.Request) {
	ns, name := namespaceParam(r), r.PathValue("name")
	p := principalOf(r.Context())
	if m := s.store.Snapshot().Model(nil, ns, name); !modelVisible(p, m) {
		s.fail(w, r, hiddenModel(ns, name))
		return
	}
	if err := mayWriteModel(p, ns); err != nil {
		s.fail(w, r, err)
		return
	}
	version := 0
	if v := r.URL.Query().Get("version"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			s.fail(w, r, &httpError{http.StatusBadRequest, fmt.Errorf("version must be a number >= 1, got %q", v)})
			return
		}
		version = n
	}
	resp, _, err := s.apply(r.Context(), state.ModelDeleteType, &state.ModelDeleteRequest{Namespace: ns, Name: name, Version: version})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleModelEvals(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req api.ModelEvalRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Namespace == "" {
		req.Namespace = namespaceParam(r)
	}
	p := principalOf(r.Context())
	if m := s.store.Snapshot().Model(nil, req.Namespace, name); !modelVisible(p, m) {
		s.fail(w, r, hiddenModel(req.Namespace, name))
		return
	}
	if err := mayWriteModel(p, req.Namespace); err != nil {
		s.fail(w, r, err)
		return
	}
	if len(req.Results) == 0 {
		s.fail(w, r, &httpError{http.StatusBadRequest, errors.New("results: at least one evaluation result is required")})
		return
	}
	now := time.Now().UTC()
	for i, e := range req.Results {
		if e.Time.IsZero() {
			req.Results[i].Time = now
		}
	}
	if err := api.CheckEvals(req.Results); err != nil {
		s.fail(w, r, &httpError{http.StatusBadRequest, err})
		return
	}
	evals := []state.VersionEvals{{Namespace: req.Namespace, Name: name, Version: req.Version, Results: req.Results}}
	if _, _, err := s.apply(r.Context(), state.ModelEvalType, &state.ModelEvalRequest{Evals: evals}); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
