// Package raftbench measures Ark's control plane as `ark bench raft` runs
// it: a 3-server cluster of real `ark server` processes on loopback with
// fsync on, job submissions committed per second at several client counts,
// commit latency, and the time from SIGKILL of the leader to the first
// write the new leader accepts.
package raftbench
