package spec

import (
	"strings"
	"testing"
)

// shareYAML is a spec asking for a share of one GPU; RES is replaced by
// the resources under test.
const shareYAML = `
name: small-serve
kind: inference
replicas: 2
resources: RES
task: {driver: exec, exec: {command: [serve]}}
`

func TestParseShares(t *testing.T) {
	tests := []struct {
		res        string
		gpus       int
		milli      int
		gpuMemory  Quantity
		milliTotal int64
	}{
		{"{gpuMilli: 500}", 1, 500, "", 1000},
		{"{gpus: 1, gpuMilli: 250, gpuMemory: 20Gi}", 1, 250, "20Gi", 500},
		{"{gpus: 0, gpuMilli: 1}", 1, 1, "", 2},
		{"{gpuMilli: 999}", 1, 999, "", 1998},
		{"{gpus: 2}", 2, 0, "", 4000},
	}
	for _, tt := range tests {
		t.Run(tt.res, func(t *testing.T) {
			j, err := Parse([]byte(strings.Replace(shareYAML, "RES", tt.res, 1)))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			r := j.Resources
			if r.GPUs != tt.gpus || r.GPUMilli != tt.milli || r.GPUMemory != tt.gpuMemory {
				t.Errorf("resources %+v, want gpus %d, gpuMilli %d, gpuMemory %q", r, tt.gpus, tt.milli, tt.gpuMemory)
			}
			if r.Shared() != (tt.milli > 0) {
				t.Errorf("Shared = %v", r.Shared())
			}
			if got := j.GPUMilliTotal(); got != tt.milliTotal {
				t.Errorf("GPUMilliTotal = %d, want %d", got, tt.milliTotal)
			}
		})
	}
}

func TestParseInvalidShares(t *testing.T) {
	tests := []struct {
		name, res, want string
	}{
		{"several GPUs with a share", "{gpus: 2, gpuMilli: 500}",
			"resources.gpuMilli: is a share of one GPU: resources.gpus must be 1 or left out, got 2 (ask for whole GPUs or for a share, not both)"},
		{"a whole GPU in milli", "{gpuMilli: 1000}",
			"resources.gpuMilli: must be between 1 and 999 (a share of one GPU in thousandths; ask for whole GPUs with resources.gpus), got 1000"},
		{"more than a GPU in milli", "{gpus: 1, gpuMilli: 1500}",
			"resources.gpuMilli: must be between 1 and 999 (a share of one GPU in thousandths; ask for whole GPUs with resources.gpus), got 1500"},
		{"negative share", "{gpuMilli: -5}",
			"resources.gpus: must be >= 1, got 0; resources.gpuMilli: must be between 1 and 999 (a share of one GPU in thousandths; ask for whole GPUs with resources.gpus), got -5"},
		{"negative gpus with a share", "{gpus: -1, gpuMilli: 500}", "resources.gpus: must be >= 1, got -1"},
		{"share as a string", `{gpuMilli: "500m"}`, `resources.gpuMilli: must be an integer, got string "500m"`},
		{"share as a fraction", `{gpuMilli: 0.5}`, "resources.gpuMilli: must be an integer, got number 0.5"},
		{"typo", `{gpuMili: 500}`, `resources.gpuMili: unknown field (did you mean "gpuMilli"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := Parse([]byte(strings.Replace(shareYAML, "RES", tt.res, 1)))
			if err == nil {
				t.Fatalf("Parse accepted %+v", j.Resources)
			}
			if err.Error() != tt.want {
				t.Fatalf("error\n got %q\nwant %q", err, tt.want)
			}
		})
	}
}
