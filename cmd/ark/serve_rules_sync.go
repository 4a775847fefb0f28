package main

import (
	"context"
	"net/http"
	"time"

	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/worker/serve"
)

// rulesPollInterval is how often a builtin server under an agent asks it
// for the live part of its spec (an update of task.builtin.rules or
// task.builtin.adapters is applied in place).
const rulesPollInterval = 2 * time.Second

// agentRules is what the agent answers (worker/agent TaskRules).
type agentRules struct {
	Version  int            `json:"version"`
	Rules    []spec.Rule    `json:"rules"`
	Adapters []spec.Adapter `json:"adapters"`
}

// liveSetters apply a new version's rules and adapters to the server.
type liveSetters struct {
	rules    func([]spec.Rule) error
	adapters func([]serve.AdapterSpec) error
}

// syncRules keeps a builtin server's rules and adapters those of its
// allocation, as its agent sees them: from version (what it started with)
// on, each new version's rules are set (an invalid list is refused and the
// old rules stay) and its adapters are loaded or dropped (in the
// background: requests do not wait). An agent that answers no adapters
// field (an older one) leaves them as they are. It returns when ctx ends.
func syncRules(ctx context.Context, agent, alloc string, version int, set liveSetters, logf func(string, ...any)) {
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
		if err := set.rules(r.Rules); err != nil {
			logf("rules of version %d refused, keeping version %d's: %v", r.Version, version, err)
		} else {
			logf("rules of version %d in force (%d rules)", r.Version, len(r.Rules))
		}
		if r.Adapters != nil {
			if err := set.adapters(adapterSpecs(r.Adapters)); err != nil {
				logf("adapters of version %d: %v", r.Version, err)
			} else {
				logf("adapters of version %d in force (%d adapters, loading in the background)", r.Version, len(r.Adapters))
			}
		}
		version = r.Version
	}
}

// adapterSpecs are a spec's adapters as the builtin server takes them.
func adapterSpecs(as []spec.Adapter) []serve.AdapterSpec {
	out := make([]serve.AdapterSpec, len(as))
	for i, a := range as {
		out[i] = serve.AdapterSpec{Name: a.Name, URI: a.URI, Pinned: a.Pinned}
	}
	return out
}

func fetchAgentRules(ctx context.Context, agent, alloc string) (*agentRules, error) {
	var r agentRules
	if err := callAgent(ctx, http.MethodGet, agent, alloc, "rules", nil, &r, 5*time.Second); err != nil {
		return nil, err
	}
	return &r, nil
}
