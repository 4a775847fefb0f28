package api

// ServiceAdapterRequest is the body of POST /v1/jobs/{id}/adapters: add a
// LoRA adapter to a builtin service's spec (task.builtin.adapters).
type ServiceAdapterRequest struct {
	Name   string `json:"name"`
	URI    string `json:"uri"`              // a checkpoint, or model://NAME[@V] of the catalog
	Pinned bool   `json:"pinned,omitempty"` // never evicted from the replicas' host memory
}

// ServiceAdapterAnswer says what POST|DELETE /v1/jobs/{id}/adapters
// committed: the job's version whose task.builtin.adapters has the change.
// Its running replicas take it in place (they load a new adapter in the
// background within seconds); replicas started later serve it too.
type ServiceAdapterAnswer struct {
	Name string `json:"name"`
	URI  string `json:"uri,omitempty"` // as resolved (a catalog reference's checkpoint)
	// Version is the job's version with the change; Changed is false
	// when the spec already said so (nothing was committed).
	Version int  `json:"version"`
	Changed bool `json:"changed"`
	// InPlace counts the serving replicas that take it without a restart.
	InPlace int `json:"inPlace"`
	// Rollout is set when the serving replicas are replaced instead (a
	// rolling update: new replicas start with the new spec); NewPaths
	// say why: local paths of the new spec, the adapter's store, that
	// the running replicas' sandboxes may not read.
	Rollout  bool     `json:"rollout,omitempty"`
	NewPaths []string `json:"newPaths,omitempty"`
	Index    uint64   `json:"index,omitempty"`
}

// Adapter states a replica reports (ReplicaAdapter.Tier): the builtin
// server's tiers (active, host, store: loaded and checked against the
// base), loading, or failed (Error says why: for an adapter of another
// base, "not an adapter of this base: ..."). AdapterPending is the
// servers' own, for an adapter asked by name: it is in the service's spec
// but the replica does not list it yet (its agent has not told it the new
// version; it asks every two seconds).
const (
	AdapterActive  = "active"
	AdapterHost    = "host"
	AdapterStore   = "store"
	AdapterLoading = "loading"
	AdapterFailed  = "failed"
	AdapterPending = "pending"
)

// ServiceAdapterStates answers GET /v1/jobs/{id}/adapters[?name=N]: what
// each serving replica of a builtin service says of its adapters (all of
// them, or N alone), asked by the server at the time of the request.
type ServiceAdapterStates struct {
	Job      string            `json:"job"`
	Version  int               `json:"version"` // the job's spec version
	Replicas []ReplicaAdapters `json:"replicas"`
}

// ReplicaAdapters is one serving replica's answer. Error says why there is
// none (the replica is not ready yet, or did not answer): its adapters
// are unknown, not absent.
type ReplicaAdapters struct {
	Alloc      string           `json:"alloc"`
	Rank       int              `json:"rank"`
	Node       string           `json:"node,omitempty"`
	JobVersion int              `json:"jobVersion"`
	Error      string           `json:"error,omitempty"`
	Adapters   []ReplicaAdapter `json:"adapters"`
}

// ReplicaAdapter is one adapter as a replica serves it: its GET
// /v1/adapters row (worker/serve AdapterInfo), the fields the servers
// pass on.
type ReplicaAdapter struct {
	Name  string `json:"name"`
	URI   string `json:"uri"`
	Tier  string `json:"tier"`
	Error string `json:"error,omitempty"`
}

// Loaded reports whether the replica holds a in a tier it serves from: it
// was read and checked against the base.
func (a ReplicaAdapter) Loaded() bool {
	return a.Tier == AdapterActive || a.Tier == AdapterHost || a.Tier == AdapterStore
}
