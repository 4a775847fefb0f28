package state

import (
	"encoding/binary"
	"fmt"

	"github.com/ark-sched/ark/scheduler/api"
)

// The jobs table's indexes read the job's fields directly, without the
// reflection of memdb.StringFieldIndex (FieldByName for every index of
// every job write), and each key has room for the primary key memdb
// appends to it on a non-unique index, so that append does not copy it
// again.

// jobStringIndex indexes jobs by one string field; a job whose field is
// empty has no entry (as StringFieldIndex).
type jobStringIndex struct {
	name  string
	field func(*api.Job) string
}

func (x jobStringIndex) FromObject(obj any) (bool, []byte, error) {
	j, ok := obj.(*api.Job)
	if !ok {
		return false, nil, fmt.Errorf("%s index: %T is not a job", x.name, obj)
	}
	v := x.field(j)
	if v == "" {
		return false, nil, nil
	}
	b := make([]byte, 0, len(v)+1+len(j.ID)+1)
	b = append(b, v...)
	return true, append(b, 0), nil
}

func (x jobStringIndex) FromArgs(args ...any) ([]byte, error) {
	s, err := x.arg(args)
	if err != nil {
		return nil, err
	}
	return append([]byte(s), 0), nil
}

// FromArgsPrefix serves lookups of NAME_prefix, as StringFieldIndex does.
func (x jobStringIndex) FromArgsPrefix(args ...any) ([]byte, error) {
	s, err := x.arg(args)
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}

func (x jobStringIndex) arg(args []any) (string, error) {
	if len(args) != 1 {
		return "", fmt.Errorf("%s index: look up with one string, got %d arguments", x.name, len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return "", fmt.Errorf("%s index: look up with a string, got %#v", x.name, args[0])
	}
	return s, nil
}

// jobStatusIndex indexes jobs by status, then CreateIndex: the key is the
// status and a NUL (as StringFieldIndex keys it), then CreateIndex
// big-endian. Looked up with a status alone it lists the jobs of that
// status (in creation order, where a status-only index gave ID order;
// every reader sorts them); with a status and an index, LowerBound starts
// at the jobs of that status created at or after it. One index serves
// both reads that took two (status, and create for PendingJobsSince):
// every job write updated both.
type jobStatusIndex struct{}

func (jobStatusIndex) FromObject(obj any) (bool, []byte, error) {
	j, ok := obj.(*api.Job)
	if !ok {
		return false, nil, fmt.Errorf("status index: %T is not a job", obj)
	}
	if j.Status == "" {
		return false, nil, nil
	}
	b := make([]byte, 0, len(j.Status)+1+8+len(j.ID)+1)
	b = append(b, j.Status...)
	b = append(b, 0)
	return true, binary.BigEndian.AppendUint64(b, j.CreateIndex), nil
}

func (jobStatusIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) < 1 || len(args) > 2 {
		return nil, fmt.Errorf("status index: look up with a status and an optional create index, got %d arguments", len(args))
	}
	status, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("status index: look up with a string status, got %#v", args[0])
	}
	b := append([]byte(status), 0)
	if len(args) == 2 {
		create, ok := args[1].(uint64)
		if !ok {
			return nil, fmt.Errorf("status index: look up with a uint64 create index, got %#v", args[1])
		}
		b = binary.BigEndian.AppendUint64(b, create)
	}
	return b, nil
}
