package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/worker/serve"
)

// The rules row of `ark bench serve`: the same base-only load at
// concurrency 1 with no rules, with input rules and with output rules
// that match nothing (every request is checked against every rule and
// none is cut short), runs alternated, the differences of the medians
// reported.

const (
	rulesRequests = 32 // per run
	rulesRounds   = 3  // runs each way
	benchInRules  = 100
	benchOutRules = 10
)

type rulesOverhead struct {
	InputRules  int `json:"input_rules"`
	OutputRules int `json:"output_rules"`
	// Input rules are checked before a request is queued: what they add
	// to the time to the first token is their cost.
	InputTTFTMsP50Delta float64 `json:"input_ttft_ms_p50_delta"`
	InputTTFTMsP99Delta float64 `json:"input_ttft_ms_p99_delta"`
	// Output rules hold back the text a match could still span before it
	// leaves (worker/serve/rules): the first token waits for the window,
	// and the ones after come in larger chunks.
	OutputTTFTMsP50Delta float64 `json:"output_ttft_ms_p50_delta"`
	OutputTPOTMsP50Delta float64 `json:"output_tpot_ms_p50_delta"`
}

// benchRuleSet is benchInRules input keyword rules or benchOutRules
// output regex rules (side), none of which any bench prompt or output
// contains.
func benchRuleSet(side string) []spec.Rule {
	rs := []spec.Rule{}
	if side == spec.RuleInput {
		for i := range benchInRules {
			rs = append(rs, spec.Rule{ID: fmt.Sprintf("in-%d", i), On: spec.RuleInput, Keywords: []string{fmt.Sprintf("zqxj%dvw", i), fmt.Sprintf("qqzz %d kk", i)},
				Action: spec.RuleBlock, Answer: "blocked"})
		}
	}
	if side == spec.RuleOutput {
		for i := range benchOutRules {
			rs = append(rs, spec.Rule{ID: fmt.Sprintf("out-%d", i), On: spec.RuleOutput, Regex: fmt.Sprintf(`xq%dzj\w{0,8}`, i), Action: spec.RuleMask})
		}
	}
	return rs
}

// measureRules runs load with no rules, with the input rules and with
// the output rules on the server at url, alternately, and leaves it
// without rules.
func measureRules(ctx context.Context, url string, load func(seed uint64) (serve.LoadResult, error)) (*rulesOverhead, error) {
	runs := map[string][]serve.LoadResult{}
	for round := range rulesRounds {
		for _, side := range []string{"", spec.RuleInput, spec.RuleOutput} {
			if err := putRules(ctx, url, benchRuleSet(side)); err != nil {
				return nil, err
			}
			r, err := load(uint64(500 + round))
			if err != nil {
				return nil, err
			}
			if r.Failed > 0 {
				return nil, fmt.Errorf("rules bench: %d requests failed", r.Failed)
			}
			runs[side] = append(runs[side], r)
		}
	}
	if err := putRules(ctx, url, []spec.Rule{}); err != nil {
		return nil, err
	}
	med := func(side string, f func(serve.LoadResult) float64) float64 {
		var xs []float64
		for _, r := range runs[side] {
			xs = append(xs, f(r))
		}
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	delta := func(side string, f func(serve.LoadResult) float64) float64 { return med(side, f) - med("", f) }
	ttft50 := func(r serve.LoadResult) float64 { return r.TTFTMsP50 }
	return &rulesOverhead{InputRules: benchInRules, OutputRules: benchOutRules,
		InputTTFTMsP50Delta:  delta(spec.RuleInput, ttft50),
		InputTTFTMsP99Delta:  delta(spec.RuleInput, func(r serve.LoadResult) float64 { return r.TTFTMsP99 }),
		OutputTTFTMsP50Delta: delta(spec.RuleOutput, ttft50),
		OutputTPOTMsP50Delta: delta(spec.RuleOutput, func(r serve.LoadResult) float64 { return r.TPOTMsP50 }),
	}, nil
}

// putRules replaces the bench server's rules (it listens on loopback,
// where managing it needs no token).
func putRules(ctx context.Context, url string, rs []spec.Rule) error {
	body, err := json.Marshal(map[string]any{"rules": rs})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url+"/v1/rules", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("PUT /v1/rules: %s %s", resp.Status, b)
	}
	return nil
}
