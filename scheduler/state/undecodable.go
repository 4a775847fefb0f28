package state

import (
	"errors"
	"fmt"
)

// ErrUnknownMessageType is the cause of an UndecodableEntryError for a type
// this version does not know and may not skip.
var ErrUnknownMessageType = errors.New("unknown message type")

// UndecodableEntryError is a committed log entry this server cannot apply:
// an unknown type without IgnoreUnknownTypeFlag, or a body that does not
// decode. Applying around it would make this server's state differ from
// the servers that can read it, so the FSM halts: it applies nothing more
// and takes no snapshot until a Restore replaces its state. The server
// stops on it (FSM.Halted) and the operator recovers as docs/design.md
// ("Undecodable log entries") says.
type UndecodableEntryError struct {
	Index uint64
	Type  MessageType
	Err   error
}

func (e *UndecodableEntryError) Error() string {
	return fmt.Sprintf("cannot apply raft log entry at index %d (%s): %v; this server stops rather than diverge from the others. "+
		"To recover, run the Ark version that wrote the entry (upgrade this server), or remove the entry from this server's log: "+
		"stop it, empty its data dir and join it to the cluster again (it receives a snapshot taken after index %d), "+
		"or restore the cluster from a snapshot saved before index %d (see docs/design.md, \"Undecodable log entries\")",
		e.Index, e.Type, e.Err, e.Index, e.Index)
}

func (e *UndecodableEntryError) Unwrap() error { return e.Err }
