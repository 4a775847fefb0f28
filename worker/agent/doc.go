// Package agent is the node agent: it registers the node's inventory with
// the servers, heartbeats, long-polls the node's allocations (a blocking
// query on the state index), starts and stops tasks through drivers with
// the rendezvous environment, reports every task's state back, and serves
// the tasks' logs to the servers.
package agent
