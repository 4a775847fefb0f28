package main

import (
	"context"
	"net/http"
	"time"

	"github.com/ark-sched/ark/scheduler/spec"
)

// rulesPollInterval is how often a builtin server under an agent asks it
// for its rules (an update of task.builtin.rules is applied in place).
const rulesPollInterval = 2 * time.Second

// agentRules is what the agent answers (worker/agent TaskRules).
type agentRules struct {
	Version int         `json:"version"`
	Rules   []spec.Rule `json:"rules"`
}

// syncRules keeps a builtin server's rules those of its allocation, as
// its agent sees them: from version (what it started with) on, each new
// version's rules are set with set (which refuses an invalid list, and
// the old rules stay). It returns when ctx ends.
func syncRules(ctx context.Context, agent, alloc string, version int, set func([]spec.Rule) error, logf func(string, ...any)) {
	t := time.NewTicker(rulesPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r, err := fetchAgentRules(ctx, agent, alloc)
		if err != nil {
			continue // the agent restarting: ask again at the next tick
		}
		if r.Version == version {
			continue
		}
		if err := set(r.Rules); err != nil {
			logf("rules of version %d refused, keeping version %d's: %v", r.Version, version, err)
		} else {
			logf("rules of version %d in force (%d rules)", r.Version, len(r.Rules))
		}
		version = r.Version
	}
}

func fetchAgentRules(ctx context.Context, agent, alloc string) (*agentRules, error) {
	var r agentRules
	if err := callAgent(ctx, http.MethodGet, agent, alloc, "rules", nil, &r, 5*time.Second); err != nil {
		return nil, err
	}
	return &r, nil
}
