// Package state owns the replicated cluster state: the typed, append-only
// commands that go through the Raft log and their codec, the FSM that applies
// them, and the indexed in-memory store (go-memdb) that every server reads,
// with blocking queries on the Raft index and versioned snapshots.
//
// Apply is deterministic: every time stamp and ID a command needs is chosen
// by the leader before the command enters the log. A command that cannot be
// decoded is a bug and panics; a command that is rejected for business
// reasons (unknown job, plan conflict) returns an error as the apply
// response and changes nothing.
package state
