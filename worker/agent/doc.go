// Package agent is the node agent: it registers the node's inventory with
// the servers, heartbeats, long-polls the node's allocations (a blocking
// query on the state index), starts and stops tasks through drivers with
// the rendezvous environment, reports every task's state back, and serves
// the tasks' logs to the servers.
//
// It acts only for its own node: registration returns a node secret and a
// logs key that it keeps in its data dir (identity.go) and uses for
// everything after. A task's environment is an allowlist, never the
// agent's own (env.go); a task reports to its agent with its own task
// token (auth.go) on the agent's listener, or on a loopback one when the
// agent serves logs over TLS (listen.go); a namespace's checkpoint key
// reaches the task as a file only it may read (keys.go). Where
// nvidia-cuda-mps-control exists, a GPU that holds shares runs its own CUDA
// MPS control daemon, started before its first share and stopped after its
// last, so a share's compute and memory limits hold (mps.go). Its
// /metrics serves the GPUs' figures, its tasks', and the figures tasks
// report about themselves (a trainer's step, loss and tokens/s in its
// reports, a server's in its health answer) under the job, namespace,
// rank and node of the allocation the agent started (taskmetrics.go).
package agent
