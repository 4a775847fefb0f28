package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
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
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, agent+"/v1/allocations/"+alloc+"/rules", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+os.Getenv("ARK_TASK_TOKEN"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("agent: %s %s", resp.Status, b)
	}
	var r agentRules
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&r); err != nil {
		return nil, fmt.Errorf("agent's rules: %w", err)
	}
	return &r, nil
}
