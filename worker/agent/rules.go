package agent

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// A service's intervention rules change without a restart: an update
// that changes only task.builtin.rules is applied in place (the servers
// give the running allocations the new task), the agent keeps the latest
// view of each allocation (task.live), and the builtin server asks it
// for its rules (GET /v1/allocations/{id}/rules with its task token,
// ARK_TASK_TOKEN) every few seconds, swapping them when the version
// moved. Data flows down, as for everything else a task learns: servers,
// agent, task.

// TaskRules is what GET /v1/allocations/{id}/rules answers.
type TaskRules struct {
	// Version is the job version the allocation runs (it moves with
	// each update applied in place).
	Version int         `json:"version"`
	Rules   []spec.Rule `json:"rules"`
}

// rulesOf is an allocation's current rules.
func rulesOf(al *api.Allocation) TaskRules {
	out := TaskRules{Version: al.JobVersion, Rules: []spec.Rule{}}
	if b := al.Task.Builtin; b != nil && b.Rules != nil {
		out.Rules = b.Rules
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
