package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// Business rejections returned as apply responses.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// FSM applies committed log entries to a Store. It implements raft.FSM.
type FSM struct {
	store *Store
	log   *zap.Logger

	// fatal holds the entry the FSM could not apply; halted closes then.
	mu      sync.Mutex
	fatal   *UndecodableEntryError
	halted  chan struct{}
	skipped map[MessageType]bool // ignorable unknown types already logged
}

// NewFSM returns an FSM over a new, empty store.
func NewFSM(log *zap.Logger) *FSM {
	return &FSM{store: NewStore(), log: log, halted: make(chan struct{}), skipped: map[MessageType]bool{}}
}

// Store returns the store the FSM writes.
func (f *FSM) Store() *Store { return f.store }

// Fatal returns the *UndecodableEntryError that halted the FSM, or nil.
func (f *FSM) Fatal() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fatal == nil {
		return nil
	}
	return f.fatal
}

// Halted is closed when the FSM meets an entry it cannot apply; the server
// then stops with Fatal's error.
func (f *FSM) Halted() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.halted
}

func (f *FSM) halt(e *UndecodableEntryError) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fatal == nil {
		f.fatal = e
		close(f.halted)
		f.log.Error("halting: a committed log entry cannot be applied", zap.Uint64("index", e.Index), zap.Error(e))
	}
	return f.fatal
}

// Apply applies one committed entry. It returns nil or an error (a business
// rejection, or an *UndecodableEntryError) or the command's response (an
// *ApplyPlanResponse for ApplyPlan, a *RegisterJobsResponse for
// RegisterJobs, whose items carry their own rejections).
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	return f.ApplyEntry(l.Index, l.Data)
}

// ApplyEntry applies one command at a Raft index; Apply and tests use it.
// It never panics on what the log holds: see UndecodableEntryError.
func (f *FSM) ApplyEntry(index uint64, data []byte) any {
	if err := f.Fatal(); err != nil {
		return err
	}
	if len(data) == 0 {
		return f.halt(&UndecodableEntryError{Index: index, Err: errors.New("empty entry")})
	}
	t, body := MessageType(data[0]), data[1:]
	if !t.known() && t&IgnoreUnknownTypeFlag != 0 {
		f.skip(index, t)
		return nil
	}
	txn := f.store.writeTxn()
	defer txn.Abort()
	txn.TrackChanges() // for countJobChanges and markCapacityChanges
	var resp any
	var err, bad error
	switch t {
	case RegisterJobType:
		if r, ok := decode[RegisterJobRequest](t, body, &bad); ok {
			resp, err = applyRegisterJob(txn, index, r)
		}
	case RegisterJobsType:
		if r, ok := decode[RegisterJobsRequest](t, body, &bad); ok {
			resp, err = applyRegisterJobs(txn, index, r)
		}
	case RegisterJobsBinaryType:
		if r, ok := decodeRegisterJobsBinary(body, &bad); ok {
			resp, err = applyRegisterJobs(txn, index, r)
		}
	case CancelJobType:
		if r, ok := decode[CancelJobRequest](t, body, &bad); ok {
			err = applyCancelJob(txn, index, r)
		}
	case UpsertNodeType:
		if r, ok := decode[UpsertNodeRequest](t, body, &bad); ok {
			err = applyUpsertNode(txn, index, r)
		}
	case NodeStatusType:
		if r, ok := decode[NodeStatusRequest](t, body, &bad); ok {
			err = applyNodeStatus(txn, index, r)
		}
	case ApplyPlanType:
		if r, ok := decode[ApplyPlanRequest](t, body, &bad); ok {
			resp, err = applyPlan(txn, index, r)
		}
	case AllocStatusType:
		if r, ok := decode[AllocStatusRequest](t, body, &bad); ok {
			err = applyAllocStatus(txn, index, r)
		}
	case ServerType:
		if r, ok := decode[ServerRequest](t, body, &bad); ok {
			err = applyServer(txn, r)
		}
	case NodeEligibilityType:
		if r, ok := decode[NodeEligibilityRequest](t, body, &bad); ok {
			err = applyNodeEligibility(txn, index, r)
		}
	case NodeDrainType:
		if r, ok := decode[NodeDrainRequest](t, body, &bad); ok {
			err = applyNodeDrain(txn, index, r)
		}
	case MigrateJobsType:
		if r, ok := decode[MigrateJobsRequest](t, body, &bad); ok {
			err = applyMigrateJobs(txn, index, r)
		}
	case GCJobsType:
		if r, ok := decode[GCJobsRequest](t, body, &bad); ok {
			resp, err = applyGCJobs(txn, index, r)
		}
	case ACLBootstrapType:
		if r, ok := decode[ACLBootstrapRequest](t, body, &bad); ok {
			err = applyACLBootstrap(txn, index, r)
		}
	case ACLUpsertPolicyType:
		if r, ok := decode[ACLUpsertPolicyRequest](t, body, &bad); ok {
			err = applyACLUpsertPolicy(txn, index, r)
		}
	case ACLDeletePolicyType:
		if r, ok := decode[ACLDeletePolicyRequest](t, body, &bad); ok {
			err = applyACLDeletePolicy(txn, index, r)
		}
	case ACLUpsertTokenType:
		if r, ok := decode[ACLUpsertTokenRequest](t, body, &bad); ok {
			err = applyACLUpsertToken(txn, index, r)
		}
	case ACLDeleteTokenType:
		if r, ok := decode[ACLDeleteTokenRequest](t, body, &bad); ok {
			err = applyACLDeleteToken(txn, index, r)
		}
	case NamespaceKeyCreateType:
		if r, ok := decode[NamespaceKeyCreateRequest](t, body, &bad); ok {
			err = applyNamespaceKeyCreate(txn, index, r)
		}
	case NamespaceKeyDeleteType:
		if r, ok := decode[NamespaceKeyDeleteRequest](t, body, &bad); ok {
			err = applyNamespaceKeyDelete(txn, index, r)
		}
	case ModelRegisterType:
		if r, ok := decode[ModelRegisterRequest](t, body, &bad); ok {
			resp, err = applyModelRegister(txn, index, r)
		}
	case ModelDeleteType:
		if r, ok := decode[ModelDeleteRequest](t, body, &bad); ok {
			resp, err = applyModelDelete(txn, index, r)
		}
	case ModelEvalType:
		if r, ok := decode[ModelEvalRequest](t, body, &bad); ok {
			err = applyModelEval(txn, index, r)
		}
	case UpdateJobType:
		if r, ok := decode[UpdateJobRequest](t, body, &bad); ok {
			err = applyUpdateJob(txn, index, r)
		}
	case PromoteJobType:
		if r, ok := decode[PromoteJobRequest](t, body, &bad); ok {
			err = applyPromoteJob(txn, index, r)
		}
	case ScaleJobType:
		if r, ok := decode[ScaleJobRequest](t, body, &bad); ok {
			err = applyScaleJob(txn, index, r)
		}
	case PendingReasonsType:
		if r, ok := decode[PendingReasonsRequest](t, body, &bad); ok {
			err = applyPendingReasons(txn, index, r)
		}
	default:
		// A newer server wrote the log; applying around the entry would
		// diverge from the servers that can read it.
		bad = fmt.Errorf("%w %d", ErrUnknownMessageType, uint8(t))
	}
	if bad != nil {
		return f.halt(&UndecodableEntryError{Index: index, Type: t, Err: bad})
	}
	if err != nil {
		return err
	}
	changes := txn.Changes()
	if err := dropKeptReasons(txn, changes); err != nil {
		return err
	}
	if err := countJobChanges(txn, changes); err != nil {
		return err
	}
	if err := markCapacityChanges(txn, index, changes); err != nil {
		return err
	}
	txn.Commit()
	return resp
}

// skip passes over an entry of an unknown type marked ignorable, logging the
// first of each type.
func (f *FSM) skip(index uint64, t MessageType) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.skipped[t] {
		f.skipped[t] = true
		f.log.Warn("skipping log entries of an unknown, ignorable message type (written by a newer server)",
			zap.Uint64("index", index), zap.Uint8("type", uint8(t)))
	}
}

// decode reads a command's body; on failure it sets *bad and reports false.
func decode[T any](t MessageType, body []byte, bad *error) (*T, bool) {
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		*bad = fmt.Errorf("decode %s: %w", t, err)
		return nil, false
	}
	return &v, true
}

func setIndex(txn *memdb.Txn, table string, index uint64) error {
	if err := txn.Insert(tableIndex, &indexEntry{Key: table, Value: index}); err != nil {
		return fmt.Errorf("update %s index: %w", table, err)
	}
	return nil
}

// Snapshot captures the store for Raft. Persist runs concurrently with
// Apply; it reads the immutable view taken here.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	// A halted FSM lags the log: a snapshot would be labelled with an
	// index past the entry it never applied, and the log compacted over it.
	if err := f.Fatal(); err != nil {
		return nil, fmt.Errorf("state snapshot refused: %w", err)
	}
	return &fsmSnapshot{snap: f.store.Snapshot()}, nil
}

// Restore replaces the whole store with a snapshot's contents.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	db, err := readSnapshot(rc)
	if err != nil {
		return fmt.Errorf("restore state snapshot: %w", err)
	}
	f.store.replace(db)
	// The state is replaced whole and Raft applies the log from the
	// snapshot's index on: if the entry that halted the FSM is still there
	// it halts again; if not, the server is whole.
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fatal != nil {
		f.fatal, f.halted = nil, make(chan struct{})
	}
	return nil
}

type fsmSnapshot struct{ snap *Snapshot }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeSnapshot(sink, s.snap); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist state snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
