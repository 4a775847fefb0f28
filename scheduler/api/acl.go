package api

import "time"

// ACL wire types: policies say what a token may do in which namespaces;
// tokens carry policies. Both are replicated Raft state (Nomad's model).

// Capabilities a policy grants in a namespace.
const (
	CapSubmit   = "submit"
	CapRead     = "read"
	CapCancel   = "cancel"
	CapLogs     = "logs"
	CapUpdate   = "update"
	CapServices = "services"
)

// Token types.
const (
	// ACLClientToken acts only as its policies allow.
	ACLClientToken = "client"
	// ACLManagementToken may do everything, as the token file's
	// management tokens do.
	ACLManagementToken = "management"
)

// ACLPolicy is a named set of rules, one per namespace.
type ACLPolicy struct {
	Name        string             `json:"name"`
	Description string             `json:"description,omitempty"`
	Namespaces  []ACLNamespaceRule `json:"namespaces"`
	CreateIndex uint64             `json:"createIndex,omitempty"`
	ModifyIndex uint64             `json:"modifyIndex,omitempty"`
}

// ACLNamespaceRule is what a policy allows in one namespace.
type ACLNamespaceRule struct {
	Name string `json:"name"`
	// Capabilities: submit, read, cancel, logs, update, services.
	Capabilities []string `json:"capabilities"`
	// Queues the namespace's jobs may use; empty allows only "default".
	Queues []string `json:"queues,omitempty"`
	// MaxPriority is the highest priority a job may ask for; 0 means the
	// default priority (50), so that a tenant never outranks others
	// unless an operator says so.
	MaxPriority int `json:"maxPriority,omitempty"`
	// Limits on the namespace's unfinished jobs; 0 is no limit (the
	// servers' own per-namespace cap still holds).
	Limits ACLLimits `json:"limits,omitempty"`
	// Storage prefixes (file:///dir, /dir or s3://bucket/prefix) the
	// namespace's jobs may read (builtin base, data) and write.
	Storage ACLPrefixes `json:"storage,omitempty"`
	// Models are catalog models the namespace may read and write.
	Models ACLPrefixes `json:"models,omitempty"`
}

// ACLLimits bound a namespace's unfinished jobs.
type ACLLimits struct {
	// Jobs caps pending and running jobs together.
	Jobs int `json:"jobs,omitempty"`
	// PendingJobs caps pending jobs.
	PendingJobs int `json:"pendingJobs,omitempty"`
	// GPUs caps the GPUs asked by pending and running jobs together.
	GPUs int `json:"gpus,omitempty"`
}

// ACLPrefixes are what may be read and written.
type ACLPrefixes struct {
	Read  []string `json:"read,omitempty"`
	Write []string `json:"write,omitempty"`
}

// ACLToken describes a token. SecretID is set only in the answer that
// creates it (bootstrap or create): the servers keep only its digest.
type ACLToken struct {
	AccessorID string    `json:"accessorId"`
	SecretID   string    `json:"secretId,omitempty"`
	Name       string    `json:"name,omitempty"`
	Type       string    `json:"type"`
	Policies   []string  `json:"policies,omitempty"`
	CreateTime time.Time `json:"createTime"`
	// ExpirationTime is when the token stops working; nil never.
	ExpirationTime *time.Time `json:"expirationTime,omitempty"`
	CreateIndex    uint64     `json:"createIndex,omitempty"`
}

// ACLTokenRequest asks for a new token.
type ACLTokenRequest struct {
	Name     string   `json:"name,omitempty"`
	Type     string   `json:"type,omitempty"` // client (default) or management
	Policies []string `json:"policies,omitempty"`
	// TTL is a Go duration ("24h"); empty never expires.
	TTL string `json:"ttl,omitempty"`
}
