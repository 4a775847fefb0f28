package api

// ServiceAdapterRequest is the body of POST /v1/jobs/{id}/adapters: load
// a LoRA adapter into every ready replica of a builtin service.
type ServiceAdapterRequest struct {
	Name   string `json:"name"`
	URI    string `json:"uri"`              // a checkpoint, or model://NAME[@V] of the catalog
	Pinned bool   `json:"pinned,omitempty"` // never evicted from the replicas' host memory
}

// ServiceAdapterAnswer says what each ready replica answered.
type ServiceAdapterAnswer struct {
	Name     string          `json:"name"`
	URI      string          `json:"uri,omitempty"` // as resolved (a catalog reference's checkpoint)
	Replicas []ReplicaAnswer `json:"replicas"`
}

// ReplicaAnswer is one replica's answer to a forwarded call.
type ReplicaAnswer struct {
	Rank   int    `json:"rank"`
	Alloc  string `json:"alloc"`
	Status int    `json:"status"`          // its HTTP status; 0 when it could not be reached
	Error  string `json:"error,omitempty"` // its error message, when Status is not 200
}
