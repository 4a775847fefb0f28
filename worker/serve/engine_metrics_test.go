package serve

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// TestHealthMetrics: after two requests the health answer carries the
// figures the agent exports: both requests under the base, their tokens,
// and one observation each in the TTFT and TPOT histograms, all of which
// pass the agent's check.
func TestHealthMetrics(t *testing.T) {
	url, _ := startedServer(t)
	for range 2 {
		if code, _, out := post(t, url, "/v1/generate", `{"prompt":"ab","tokens":12,"temperature":0.5,"seed":3}`); code != 200 {
			t.Fatalf("%d %v", code, out)
		}
	}
	h := getHealth(t, url)
	m := h.Metrics
	if m == nil || m.Serve == nil {
		t.Fatalf("health without metrics: %+v", h)
	}
	if err := m.Check(); err != nil {
		t.Fatalf("the agent would refuse these figures: %v", err)
	}
	s := m.Serve
	if s.Requests[""] != 2 || len(s.Requests) != 1 || s.OutputTokens != 24 || s.Running != 0 || s.Waiting != 0 {
		t.Errorf("figures %+v, want 2 base requests, 24 tokens, none running or waiting", s)
	}
	for name, hist := range map[string][]uint64{"ttft": s.TTFT.Counts, "tpot": s.TPOT.Counts} {
		n := uint64(0)
		for _, c := range hist {
			n += c
		}
		if n != 2 {
			t.Errorf("%s histogram holds %d observations, want 2", name, n)
		}
	}
	if s.TTFT.Sum <= 0 || s.TTFT.Sum > float64(time.Minute/time.Second) {
		t.Errorf("TTFT sum %v s", s.TTFT.Sum)
	}
}

// getHealth reads the server's /v1/health answer.
func getHealth(t *testing.T, url string) Health {
	t.Helper()
	resp, err := http.Get(url + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return h
}
