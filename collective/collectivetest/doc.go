// Package collectivetest is the shared conformance suite of package
// collective: RunTransport checks any Transport implementation (tcp, shm,
// rdma where a device exists), RunCollectives checks every operation, dtype
// and world size against a serial reference over a chosen transport, and
// StartGroup runs the ranks of a job as goroutines of one process over real
// sockets and shared memory (for tests and the benchmark).
package collectivetest
