package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/scheduler/state"
	"github.com/ark-sched/ark/storage/crypt"
)

// Managing a builtin service's adapters at run time (issue 12: "management
// or the job's namespace token only"). POST /v1/jobs/{id}/adapters
// {"name","uri","pinned"} loads an adapter into every ready replica, and
// DELETE /v1/jobs/{id}/adapters/{name} removes one, each answering once
// every replica has:
//
//   - the caller needs the update capability on the job (a namespace token
//     of the token file has it in its namespace; management everywhere):
//     it changes what the service serves, as an update does;
//   - the URI is resolved (model://NAME[@V]) and checked like a
//     submission's task.builtin.adapters: a location the job's namespace
//     may not read is refused (TestACLStateAttack5's check);
//   - the servers present to each replica a bearer token derived from the
//     job's namespace key (crypt.ServiceAdminToken): the replica's task
//     holds that key and derives the same token at start (ark task serve),
//     so no new secret travels. Without a cluster key there is no
//     namespace key, and this answers 409 saying so.
//
// The change is the replicas' alone, as vLLM's /v1/load_lora_adapter: a
// replica started later (a restart, a scale-out, a rollout) serves the
// spec's adapters, not these. What must survive belongs in
// task.builtin.adapters, changed with ark job update (a rolling update).
//
// The endpoint (/v1/services/{id}/...) does not forward these management
// routes of a builtin replica, nor PUT /v1/rules (rules change with ark
// job update): a namespace token that may only call a service must not
// change it, nor pass its own location checks by going through it.

// maxAdapterBody bounds the body of POST /v1/jobs/{id}/adapters.
const maxAdapterBody = 64 << 10

func (s *Server) handleAddServiceAdapter(w http.ResponseWriter, r *http.Request) {
	var req api.ServiceAdapterRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdapterBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.fail(w, r, &httpError{http.StatusBadRequest, fmt.Errorf("decode the adapter: %w", err)})
		return
	}
	j, snap, err := s.managedService(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var es spec.Errors
	if !spec.ValidAdapterName(req.Name) {
		es = append(es, spec.FieldError{Path: "name", Msg: fmt.Sprintf("want 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, got %q", req.Name)})
	}
	if req.URI == "" {
		es = append(es, spec.FieldError{Path: "uri", Msg: "the adapter's checkpoint (STORE_URI/JOB[/STEP] or model://NAME[@V]) is required"})
	}
	if len(es) > 0 {
		s.fail(w, r, es)
		return
	}
	uri, err := s.adapterURI(principalOf(r.Context()), snap, j, req.URI)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body, _ := json.Marshal(map[string]any{"name": req.Name, "uri": uri, "pinned": req.Pinned})
	s.manageReplicas(w, r, snap, j, http.MethodPost, "/v1/adapters", body, api.ServiceAdapterAnswer{Name: req.Name, URI: uri})
}

func (s *Server) handleRemoveServiceAdapter(w http.ResponseWriter, r *http.Request) {
	j, snap, err := s.managedService(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	name := r.PathValue("name")
	if !spec.ValidAdapterName(name) {
		s.fail(w, r, spec.Errors{{Path: "name", Msg: fmt.Sprintf("not an adapter name: %q", name)}})
		return
	}
	s.manageReplicas(w, r, snap, j, http.MethodDelete, "/v1/adapters/"+name, nil, api.ServiceAdapterAnswer{Name: name})
}

// managedService is the job of the request, checked: the caller may
// update it, and it is a running builtin service.
func (s *Server) managedService(r *http.Request) (*api.Job, *state.Snapshot, error) {
	id := r.PathValue("id")
	snap := s.store.Snapshot()
	j := snap.Job(nil, id)
	if err := principalOf(r.Context()).jobAccess(j, id, api.CapUpdate); err != nil {
		return nil, nil, err
	}
	switch {
	case !j.Service || j.Spec.Task.Builtin == nil:
		return nil, nil, &httpError{http.StatusConflict, fmt.Errorf("job %s is not a builtin inference service: only those serve adapters", id)}
	case j.Status != api.JobRunning:
		return nil, nil, &httpError{http.StatusConflict, fmt.Errorf("service %s is %s", id, j.Status)}
	}
	return j, snap, nil
}

// adapterURI resolves a catalog reference and checks that the job's
// namespace may read the location, as a submission's adapters are.
func (s *Server) adapterURI(p principal, snap *state.Snapshot, j *api.Job, uri string) (string, error) {
	js := &spec.Job{Namespace: j.Namespace, Kind: j.Spec.Kind,
		Task: spec.Task{Driver: spec.DriverBuiltin, Builtin: &spec.BuiltinTask{Adapters: []spec.Adapter{{Name: "a", URI: uri}}}}}
	if _, err := resolveModels(snap, js); err != nil {
		return "", err
	}
	resolved := js.Task.Builtin.Adapters[0].URI
	if p.grant == nil || p.role != roleNamespace {
		return resolved, nil // management, or a token file's namespace token: as at submission
	}
	n := p.grant.ns[j.Namespace]
	if n == nil {
		return "", hiddenJob(j.ID)
	}
	return resolved, n.checkRead(j.Namespace, storageRead{"uri", resolved})
}

// serviceAdminToken is what the replicas of j accept for managing them.
func (s *Server) serviceAdminToken(snap *state.Snapshot, j *api.Job) (string, error) {
	rec := snap.NamespaceKey(nil, j.Namespace)
	if rec == nil || s.cfg.ClusterKey == nil {
		return "", &httpError{http.StatusConflict, fmt.Errorf("managing the adapters of a running service needs checkpoint keys: "+
			"start every server with the same --cluster-key-file (namespace %q has no key); or change task.builtin.adapters with ark job update", j.Namespace)}
	}
	raw, err := s.cfg.ClusterKey.unwrap(j.Namespace, rec.KeyID, rec.Wrapped)
	if err != nil {
		return "", err
	}
	k, err := crypt.NewKey(rec.KeyID, raw)
	if err != nil {
		return "", err
	}
	return crypt.ServiceAdminToken(k, j.ID), nil
}

// manageReplicas sends method PATH with body to every ready replica of j
// at once, with the replicas' admin token, and answers with what each
// said: 200 when all took it, else the first refusal's status with every
// refusal named.
func (s *Server) manageReplicas(w http.ResponseWriter, r *http.Request, snap *state.Snapshot, j *api.Job, method, rpath string, body []byte, out api.ServiceAdapterAnswer) {
	targets, why := readyReplicas(snap, j)
	if len(targets) == 0 {
		writeError(w, http.StatusServiceUnavailable, errors.New(why))
		return
	}
	tok, err := s.serviceAdminToken(snap, j)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out.Replicas = make([]api.ReplicaAnswer, len(targets))
	var wg sync.WaitGroup
	for i := range targets {
		wg.Go(func() { out.Replicas[i] = s.manageReplica(r.Context(), &targets[i], method, rpath, body, tok) })
	}
	wg.Wait()
	status := http.StatusOK
	var refused []string
	for _, a := range out.Replicas {
		if a.Status == http.StatusOK {
			continue
		}
		if status == http.StatusOK {
			status = a.Status
			if status == 0 {
				status = http.StatusBadGateway
			}
		}
		refused = append(refused, fmt.Sprintf("replica %d: %s", a.Rank, a.Error))
	}
	if status != http.StatusOK {
		writeError(w, status, fmt.Errorf("%d of %d replicas refused: %s", len(refused), len(out.Replicas), strings.Join(refused, "; ")))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// manageReplica makes one replica's call.
func (s *Server) manageReplica(ctx context.Context, t *replicaTarget, method, rpath string, body []byte, tok string) api.ReplicaAnswer {
	a := api.ReplicaAnswer{Rank: t.alloc.Rank, Alloc: t.alloc.ID}
	var rb io.Reader
	if body != nil {
		rb = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+t.addr+rpath, rb)
	if err != nil {
		a.Error = err.Error()
		return a
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.svc.httpClient().Do(req)
	if err != nil {
		a.Error = err.Error()
		return a
	}
	defer resp.Body.Close()
	a.Status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if a.Error = strings.TrimSpace(string(b)); json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			a.Error = e.Error.Message
		}
	}
	return a
}

// managementPath reports whether a request to a builtin replica's rest
// path changes the replica (its adapters or rules): the endpoint does not
// forward those. rest is already unescaped; it is cleaned as the
// replica's router would see it.
func managementPath(method, rest string) bool {
	p := path.Clean("/" + rest)
	switch {
	case method == http.MethodGet || method == http.MethodHead:
		return false
	case p == "/v1/adapters" || strings.HasPrefix(p, "/v1/adapters/"):
		return true
	case p == "/v1/rules" || strings.HasPrefix(p, "/v1/rules/"):
		return true
	}
	return false
}
