package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/scheduler/state"
)

// Managing a builtin service's adapters (issue 12: "management or the
// job's namespace token only"). POST /v1/jobs/{id}/adapters
// {"name","uri","pinned"} adds an adapter to the service's spec and
// DELETE /v1/jobs/{id}/adapters/{name} removes one: each is a job update,
// a new version of the spec with task.builtin.adapters changed, committed
// through the path of PUT /v1/jobs/{id} (commitUpdate), so it is checked,
// stored and listed in ark job history as any update:
//
//   - the caller needs the update capability on the job (a namespace token
//     of the token file has it in its namespace; management everywhere);
//   - the URI is resolved (model://NAME[@V]); a catalog version that is
//     not a LoRA adapter, or whose lineage names a base other than the
//     service's, is refused (models_adapters.go); the whole new spec is
//     validated and authorised as an update's (authorizeSpec): a location
//     the job's namespace may not read is refused (TestACLStateAttack5's
//     check);
//   - a change of adapters alone is applied in place
//     (sched.ReplicaChanged): no replica is replaced; each running
//     replica learns its allocation's new adapters from its agent
//     (worker/agent/rules.go) within seconds and loads them in the
//     background; a replica started later (a restart, a scale-out, a
//     rollout) serves them from its spec;
//   - unless the new adapter's checkpoint is a local path the running
//     replicas' sandboxes do not open (spec.ReadRoots: they read only
//     what their spec named when they started): then the change is a
//     rollout, and the answer says so and names the paths (NewPaths).
//
// Nothing is sent to the replicas, so no secret is needed for it: this
// works with or without a cluster key. A replica under an agent takes no
// management call at all (cmd/ark serve.go).
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
	js, err := cloneSpec(&j.Spec)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	b := js.Task.Builtin
	add := spec.Adapter{Name: req.Name, URI: req.URI, Pinned: req.Pinned}
	i := slices.IndexFunc(b.Adapters, func(a spec.Adapter) bool { return a.Name == req.Name })
	var was *spec.Adapter
	if i >= 0 {
		old := b.Adapters[i]
		was, b.Adapters[i] = &old, add
	} else {
		i = len(b.Adapters)
		b.Adapters = append(b.Adapters, add)
	}
	// The other checkpoints of the spec were resolved when it was
	// committed: this resolves the new adapter's alone.
	refs, err := resolveModels(snap, js)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	add = b.Adapters[i]
	// An adapter the catalog says is not one of this base is refused
	// here; any other is checked by the replicas as they load it.
	if es := adapterBaseErrors(snap, js, baseRefOf(j.Models), refs); len(es) > 0 {
		s.fail(w, r, es)
		return
	}
	switch {
	case was != nil && was.URI != add.URI:
		s.fail(w, r, &httpError{http.StatusConflict, fmt.Errorf("service %s already serves adapter %q from %s: remove it first (ark job adapter rm), or change task.builtin.adapters with ark job update", j.ID, add.Name, was.URI)})
		return
	case was != nil && *was == add:
		writeJSON(w, http.StatusOK, api.ServiceAdapterAnswer{Name: add.Name, URI: add.URI, Version: j.Version}) // already so: nothing to commit
		return
	}
	s.commitAdapters(w, r, snap, j, js, append(carriedRefs(j.Models, js), refs...), api.ServiceAdapterAnswer{Name: add.Name, URI: add.URI})
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
	js, err := cloneSpec(&j.Spec)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	b := js.Task.Builtin
	i := slices.IndexFunc(b.Adapters, func(a spec.Adapter) bool { return a.Name == name })
	if i < 0 {
		names := make([]string, len(b.Adapters))
		for k, a := range b.Adapters {
			names[k] = a.Name
		}
		s.fail(w, r, &httpError{http.StatusNotFound, fmt.Errorf("service %s has no adapter %q in its spec (it has: %s)", j.ID, name, listOrNone(names))})
		return
	}
	b.Adapters = slices.Delete(b.Adapters, i, i+1)
	s.commitAdapters(w, r, snap, j, js, carriedRefs(j.Models, js), api.ServiceAdapterAnswer{Name: name})
}

// commitAdapters validates and authorises js, j's spec with its adapters
// changed, as an update's, commits it, and answers with out.
func (s *Server) commitAdapters(w http.ResponseWriter, r *http.Request, snap *state.Snapshot, j *api.Job, js *spec.Job, refs []api.ModelRef, out api.ServiceAdapterAnswer) {
	if err := js.Validate(); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.authorizeSpec(principalOf(r.Context()), js, &j.Spec); err != nil {
		s.fail(w, r, err)
		return
	}
	up, err := s.commitUpdate(r.Context(), snap, j, js, refs)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out.Version, out.Changed, out.InPlace, out.Index = up.Version, true, up.InPlace, up.Index
	out.Rollout, out.NewPaths = up.Rollout, up.NewPaths
	writeJSON(w, http.StatusOK, out)
}

// managedService is the job of the request, checked: the caller may
// update it, and it is a builtin service not yet ended.
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
	case j.Terminal():
		return nil, nil, &httpError{http.StatusConflict, fmt.Errorf("service %s is %s", id, j.Status)}
	}
	return j, snap, nil
}

// cloneSpec is a deep copy of a committed spec, to change.
func cloneSpec(js *spec.Job) (*spec.Job, error) {
	raw, err := json.Marshal(js)
	if err != nil {
		return nil, fmt.Errorf("copy the spec: %w", err)
	}
	var c spec.Job
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("copy the spec: %w", err)
	}
	return &c, nil
}

// carriedRefs are the catalog references of a job's record that js still
// uses: those of adapters renamed to their index in js (a removal moves
// the later ones), those of adapters gone dropped, the others kept.
func carriedRefs(refs []api.ModelRef, js *spec.Job) []api.ModelRef {
	const prefix = "task.builtin.adapters["
	var out []api.ModelRef
	for _, ref := range refs {
		if !strings.HasPrefix(ref.Field, prefix) {
			out = append(out, ref)
			continue
		}
		i := slices.IndexFunc(js.Task.Builtin.Adapters, func(a spec.Adapter) bool { return a.URI == ref.URI })
		if i < 0 {
			continue
		}
		ref.Field = fmt.Sprintf("%s%d].uri", prefix, i)
		out = append(out, ref)
	}
	return out
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
