package agent

import (
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
)

func TestParseLoad(t *testing.T) {
	cases := []struct {
		body string
		want api.ReplicaLoad
		ok   bool
	}{
		{`{"running":3,"waiting":2,"requests":40,"ttftP90Ms":120.5}`, api.ReplicaLoad{AllocID: "a", Running: 3, Waiting: 2, Requests: 40, TTFTP90Ms: 120.5}, true},
		{`{"model":"gpt-tiny","step":600,"running":0,"waiting":0,"requests":0,"ttftP90Ms":0}`, api.ReplicaLoad{AllocID: "a"}, true},
		{`{"running":-4,"waiting":-1,"ttftP90Ms":-3}`, api.ReplicaLoad{AllocID: "a"}, true}, // a task cannot report less than nothing
		{`ok`, api.ReplicaLoad{}, false},
		{``, api.ReplicaLoad{}, false},
		{`{"status":"ok"}`, api.ReplicaLoad{}, false},
		{`{"running":"many"}`, api.ReplicaLoad{}, false},
		{`{"running":1`, api.ReplicaLoad{}, false},
	}
	for _, tc := range cases {
		got, ok := parseLoad("a", []byte(tc.body))
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseLoad(%q) = %+v %v, want %+v %v", tc.body, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzParseLoad: a replica's health answer is the task's to write; no
// answer makes the agent panic or report a negative load.
func FuzzParseLoad(f *testing.F) {
	for _, s := range []string{`{"running":3,"waiting":2,"requests":40,"ttftP90Ms":120.5}`, `ok`, `{"running":-1}`, `{"ttftP90Ms":1e308}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		l, ok := parseLoad("a", body)
		if ok && (l.Running < 0 || l.Waiting < 0 || l.TTFTP90Ms < 0 || l.AllocID != "a") {
			t.Fatalf("parseLoad(%q) = %+v", body, l)
		}
	})
}
