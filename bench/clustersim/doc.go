// Package clustersim is `ark bench cluster`: the control plane at the size
// users run it. It starts three real `ark server` processes (as `ark bench
// raft` does, bench/raftbench), plays N agents in this one process through
// the same API client an agent uses (scheduler/api/client: register,
// heartbeat at a third of the servers' TTL, long-poll the node's
// allocations, report each task running and then succeeded after a
// simulated duration), drives a stream of jobs shaped like the openb
// trace's tasks until the cluster is full, SIGKILLs the leader once on the
// way, and reports rates, latencies, the servers' CPU and memory, the Raft
// log bytes per job, the failover time and the nodes a failover marked down.
//
// Only the GPUs are fake (8 per node); servers, Raft, HTTP and the wire
// format are the real ones. The agents cannot be worker/agent itself: an
// Agent owns a data dir, a listener and real task drivers per node, which
// 10,000 of in one process would measure the host, not the servers. The
// loops here follow worker/agent's (agent.go, tasks.go) call for call.
package clustersim
