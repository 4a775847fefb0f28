package state

import (
	"fmt"

	"github.com/ark-sched/ark/scheduler/api"
)

// heldIndex indexes the jobs that hold nodes their preemptions freed, and
// only those: a job without held nodes has no entry (the index allows
// missing values), so that registering a job or rewriting its pending
// reason touches one index fewer. Look it up with true.
type heldIndex struct{}

func (heldIndex) FromObject(obj any) (bool, []byte, error) {
	j, ok := obj.(*api.Job)
	if !ok {
		return false, nil, fmt.Errorf("held index: %T is not a job", obj)
	}
	if len(j.HeldNodes) == 0 {
		return false, nil, nil
	}
	return true, []byte{1}, nil
}

func (heldIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 || args[0] != true {
		return nil, fmt.Errorf("held index: look up with true, got %v", args)
	}
	return []byte{1}, nil
}
