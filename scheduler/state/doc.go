// Package state owns the replicated cluster state: the typed, append-only
// commands that go through the Raft log and their codec, the FSM that applies
// them, and the indexed in-memory store (go-memdb) that every server reads,
// with blocking queries on the Raft index and versioned snapshots.
//
// Apply is deterministic: every time stamp and ID a command needs is chosen
// by the leader before the command enters the log. A command that is
// rejected for business reasons (unknown job, plan conflict) returns an
// error as the apply response and changes nothing. An entry this version
// cannot decode never panics: a type flagged ignorable is skipped, anything
// else halts the FSM with an error naming the index (undecodable.go).
//
// Each change a job's owner would ask about is recorded on the job as an
// event (events.go): the command's time and the entry's index, the last
// api.MaxJobEvents, so every server holds the same list.
//
// The FSM's checks of a plan are plain arithmetic that never changes
// between versions (capacity.go); placement rules run on the leader before
// the commit (scheduler/sched.Verify), and this package does not import
// scheduler/placement, so every version replays a log the same way.
package state
