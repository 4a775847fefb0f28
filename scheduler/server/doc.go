// Package server is an Ark server: the HTTP/JSON API over the replicated
// state, and the loops that run only on the Raft leader — the scheduling
// loop that turns pending jobs into committed plans, and the heartbeat
// tracker that marks silent nodes down. Handlers depend on narrow
// interfaces (Raft is reached only through the cluster package's Node).
package server
