package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

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
}

// NewFSM returns an FSM over a new, empty store.
func NewFSM(log *zap.Logger) *FSM {
	return &FSM{store: NewStore(), log: log}
}

// Store returns the store the FSM writes.
func (f *FSM) Store() *Store { return f.store }

// Apply applies one committed entry. It returns nil or an error (a business
// rejection) or, for ApplyPlan, an *ApplyPlanResponse.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	return f.ApplyEntry(l.Index, l.Data)
}

// ApplyEntry applies one command at a Raft index; Apply and tests use it.
func (f *FSM) ApplyEntry(index uint64, data []byte) any {
	if len(data) == 0 {
		panic(fmt.Sprintf("state: empty log entry at index %d", index))
	}
	t, body := MessageType(data[0]), data[1:]
	txn := f.store.writeTxn()
	defer txn.Abort()
	var resp any
	var err error
	switch t {
	case RegisterJobType:
		resp, err = applyRegisterJob(txn, index, decode[RegisterJobRequest](t, index, body))
	case CancelJobType:
		err = applyCancelJob(txn, index, decode[CancelJobRequest](t, index, body))
	case UpsertNodeType:
		err = applyUpsertNode(txn, index, decode[UpsertNodeRequest](t, index, body))
	case NodeStatusType:
		err = applyNodeStatus(txn, index, decode[NodeStatusRequest](t, index, body))
	case ApplyPlanType:
		resp, err = applyPlan(txn, index, decode[ApplyPlanRequest](t, index, body))
	case AllocStatusType:
		err = applyAllocStatus(txn, index, decode[AllocStatusRequest](t, index, body))
	case ServerType:
		err = applyServer(txn, decode[ServerRequest](t, index, body))
	case NodeEligibilityType:
		err = applyNodeEligibility(txn, index, decode[NodeEligibilityRequest](t, index, body))
	case NodeDrainType:
		err = applyNodeDrain(txn, index, decode[NodeDrainRequest](t, index, body))
	case MigrateJobsType:
		err = applyMigrateJobs(txn, index, decode[MigrateJobsRequest](t, index, body))
	case GCJobsType:
		resp, err = applyGCJobs(txn, index, decode[GCJobsRequest](t, index, body))
	default:
		// An unknown type means a newer server wrote the log; applying
		// around it would diverge from the leader.
		panic(fmt.Sprintf("state: unknown message type %d at index %d", t, index))
	}
	if err != nil {
		return err
	}
	txn.Commit()
	return resp
}

func decode[T any](t MessageType, index uint64, body []byte) *T {
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		panic(fmt.Sprintf("state: decode %s at index %d: %v", t, index, err))
	}
	return &v
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
