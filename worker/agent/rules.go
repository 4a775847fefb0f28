package agent

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// A service's intervention rules and LoRA adapters change without a
// restart: an update that changes only task.builtin.rules or
// task.builtin.adapters is applied in place (the servers give the running
// allocations the new task), the agent keeps the latest view of each
// allocation (task.live), and the builtin server asks it for this live
// part of its spec (GET /v1/allocations/{id}/rules with its task token,
// ARK_TASK_TOKEN) every few seconds, swapping its rules and loading or
// dropping adapters when the version moved. Data flows down, as for
// everything else a task learns: servers, agent, task. One answer for
// both keeps them at one version: a replica never serves version N's
// rules with version N-1's adapters for longer than one poll.

// TaskRules is what GET /v1/allocations/{id}/rules answers: what of the
// allocation's spec a running builtin server takes in place.
type TaskRules struct {
	// Version is the job version the allocation runs (it moves with
	// each update applied in place).
	Version  int            `json:"version"`
	Rules    []spec.Rule    `json:"rules"`
	Adapters []spec.Adapter `json:"adapters"`
}

// rulesOf is an allocation's current rules and adapters (empty lists,
// never null: an empty list means "none", not "unknown").
func rulesOf(al *api.Allocation) TaskRules {
	out := TaskRules{Version: al.JobVersion, Rules: []spec.Rule{}, Adapters: []spec.Adapter{}}
	if b := al.Task.Builtin; b != nil {
		if b.Rules != nil {
			out.Rules = b.Rules
		}
		if b.Adapters != nil {
			out.Adapters = b.Adapters
		}
	}
	return out
}

func (a *Agent) handleRules(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !checkBearer(r, a.taskToken(id)) {
		httpError(w, http.StatusUnauthorized, fmt.Errorf("allocation %s's rules need its task token (ARK_TASK_TOKEN, as Authorization: Bearer)", id))
		return
	}
	a.mu.Lock()
	t := a.tasks[id]
	a.mu.Unlock()
	if t == nil || t.finished() {
		httpError(w, http.StatusNotFound, fmt.Errorf("allocation %s does not run on this node", id))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(rulesOf(t.view()))
}
