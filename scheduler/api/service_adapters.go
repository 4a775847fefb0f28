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
	InPlace int    `json:"inPlace"`
	Index   uint64 `json:"index,omitempty"`
}
