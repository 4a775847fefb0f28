// Package server is an Ark server: the HTTP/JSON API over the replicated
// state, and the loops that run only on the Raft leader — the scheduling
// loop that turns pending jobs into committed plans, and the heartbeat
// tracker that marks silent nodes down. Handlers depend on narrow
// interfaces (Raft is reached only through the cluster package's Node).
// The pass itself is scheduler/sched's (pure); scheduler.go runs it, checks
// the plan against the latest state and commits it; janitor.go holds the
// leader's timed chores (drains, maxRuntime, job GC). queuesfile.go reads
// the queues file (--queues-file); queues_api.go serves GET /v1/queues.
// submit_batch.go commits the submissions that arrive together as one Raft
// entry (RegisterJobsBinary), answering each once that entry is applied.
//
// Every request is someone's. acl.go identifies it (the token file, then a
// node's own secret: node_identity.go, then an ACL token of the replicated
// state: acl_tokens.go) and checks the route's access level; acl_enforce.go
// holds what a namespace's policies allow at submission; limits.go bounds
// what one client may hold or ask (connections, rate, slow bodies, jobs per
// namespace); tls.go serves HTTPS and calls peers and agents over mutual
// TLS; audit.go writes every write and operator call to the hash-chained
// audit log; keys.go wraps and hands out namespaces' checkpoint keys.
package server
