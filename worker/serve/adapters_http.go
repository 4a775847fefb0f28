package serve

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/worker/train"
)

// addAdapterRequest is the body of POST /v1/adapters (vLLM's
// /v1/load_lora_adapter takes lora_name and lora_path; both spellings are
// accepted).
type addAdapterRequest struct {
	Name     string `json:"name"`
	URI      string `json:"uri"`
	LoRAName string `json:"lora_name"`
	LoRAPath string `json:"lora_path"`
	Pinned   bool   `json:"pinned"`
}

// mayManage says whether r may change the served adapters: with a bearer
// token configured, the request must carry it; without, it must come from
// this machine.
func (s *Server) mayManage(w http.ResponseWriter, r *http.Request) bool {
	if tok := s.opt.AdminToken; tok != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if ok && subtle.ConstantTimeCompare([]byte(got), []byte(tok)) == 1 {
			return true
		}
		writeError(w, newAPIError(http.StatusUnauthorized, "invalid_request_error", "", "invalid_api_key",
			"managing adapters needs the server's admin token (Authorization: Bearer ...)"))
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); err == nil && ip != nil && ip.IsLoopback() {
		return true
	}
	writeError(w, newAPIError(http.StatusForbidden, "invalid_request_error", "", "forbidden",
		"managing adapters without an admin token is allowed from this machine only"))
	return false
}

// handleAddAdapter registers an adapter and answers once it is in host
// memory, checked against the base (200 with its description), or once the
// fetch failed (the adapter is then not registered).
func (s *Server) handleAddAdapter(w http.ResponseWriter, r *http.Request) {
	if !s.mayManage(w, r) {
		return
	}
	var body addAdapterRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeError(w, badRequest("", "invalid_json", "could not parse the JSON body: %v", err))
		return
	}
	if body.Name == "" {
		body.Name = body.LoRAName
	}
	if body.URI == "" {
		body.URI = body.LoRAPath
	}
	switch {
	case !spec.ValidAdapterName(body.Name):
		writeError(w, badRequest("name", "", "name: want 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, got %q", body.Name))
		return
	case body.URI == "":
		writeError(w, badRequest("uri", "", "uri: the adapter's checkpoint (STORE_URI/JOB/STEP or STORE_URI/JOB) is required"))
		return
	}
	a, err := s.reg.add(body.Name, body.URI, body.Pinned)
	if err != nil {
		writeError(w, newAPIError(http.StatusConflict, "invalid_request_error", "name", "adapter_exists", err.Error()))
		return
	}
	if err := s.reg.wait(r.Context(), a); err != nil {
		if r.Context().Err() == nil {
			_ = s.reg.remove(body.Name)
		}
		status := http.StatusBadRequest
		if errors.Is(err, train.ErrConfig) {
			status = http.StatusUnprocessableEntity // a checkpoint, but not an adapter of this base
		}
		writeError(w, newAPIError(status, "invalid_request_error", "uri", "adapter_load_failed", err.Error()))
		return
	}
	reply(w, http.StatusOK, s.reg.info(a))
}

func (s *Server) handleRemoveAdapter(w http.ResponseWriter, r *http.Request) {
	if !s.mayManage(w, r) {
		return
	}
	name := r.PathValue("name")
	if err := s.reg.remove(name); err != nil {
		writeError(w, newAPIError(http.StatusNotFound, "invalid_request_error", "name", "model_not_found", err.Error()))
		return
	}
	s.limits.forget(name)
	reply(w, http.StatusOK, map[string]any{"name": name, "deleted": true})
}

// modelEntry is a /v1/models row: an adapter's parent is the base (and
// root its checkpoint), as vLLM lists LoRA modules.
type modelEntry struct {
	ID      string  `json:"id"`
	Object  string  `json:"object"`
	Created int64   `json:"created"`
	OwnedBy string  `json:"owned_by"`
	Root    string  `json:"root"`
	Parent  *string `json:"parent"`
}

func (s *Server) handleModels(w http.ResponseWriter, _ *http.Request) {
	rows := []modelEntry{{ID: s.opt.Model, Object: "model", Created: s.created, OwnedBy: "ark", Root: s.opt.Ckpt}}
	for _, a := range s.reg.list() {
		parent := s.opt.Model
		rows = append(rows, modelEntry{ID: a.Name, Object: "model", Created: s.created, OwnedBy: "ark", Root: a.URI, Parent: &parent})
	}
	reply(w, http.StatusOK, map[string]any{"object": "list", "data": rows})
}

// model resolves a request's model field: the base ("" adapter) or a
// registered adapter.
func (s *Server) model(name string) (string, *apiError) {
	if name == s.opt.Model {
		return "", nil
	}
	if _, ok := s.reg.lookup(name); ok {
		return name, nil
	}
	names := []string{s.opt.Model}
	for _, a := range s.reg.list() {
		names = append(names, a.Name)
	}
	return "", newAPIError(http.StatusNotFound, "invalid_request_error", "model", "model_not_found",
		fmt.Sprintf("the model %q does not exist: this server serves %s (GET /v1/models)", name, quoteList(names)))
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	if len(q) > 8 {
		q = append(q[:8], fmt.Sprintf("and %d more", len(names)-8))
	}
	return strings.Join(q, ", ")
}
