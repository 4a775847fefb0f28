package api

// Validation is the answer to POST /v1/jobs/validate: what the leader's
// placement pass would do with the spec on the cluster as it is now, had
// it been submitted (nothing is committed).
type Validation struct {
	// Fits: the job would be placed now, on free GPUs or (Preempts) once
	// the jobs it outranks stop.
	Fits bool `json:"fits"`
	// Preempts lists the running jobs the job would evict to fit.
	Preempts []string `json:"preempts,omitempty"`
	// CannotFit: no ready node could take the job even on the idle
	// cluster (Reason says what is missing), as api.Job.CannotFit.
	CannotFit bool `json:"cannotFit,omitempty"`
	// Reason and Reasons say why the job would wait, as a pending job's.
	Reason  string   `json:"reason,omitempty"`
	Reasons []Reason `json:"reasons,omitempty"`
}
