package gpu

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// report is the part of check.json the tests read.
type report struct {
	GPUs              int    `json:"gpus"`
	GPUReason         string `json:"gpu_reason"`
	Ark               string `json:"ark"`
	CorrectnessFailed bool   `json:"correctness_failed"`
	Steps             []struct {
		Name    string          `json:"name"`
		Status  string          `json:"status"`
		Reason  string          `json:"reason"`
		Figures string          `json:"figures"`
		Result  json.RawMessage `json:"result"`
	} `json:"steps"`
}

var steps = []string{"inventory", "conformance", "sgemm", "trainer", "serving", "cpu-scaling"}

// buildArk builds the ark binary the script runs, as a GPU machine gets it.
func buildArk(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the ark binary and starts a server and an agent")
	}
	for _, tool := range []string{"bash", "timeout"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to run check.sh: %v", tool, err)
		}
	}
	bin := filepath.Join(t.TempDir(), "ark")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/ark").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/ark: %v\n%s", err, out)
	}
	return bin
}

// runCheck runs check.sh and returns its exit code and report.
func runCheck(t *testing.T, args ...string) (int, report, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command("bash", append([]string{"check.sh", "--out", out}, args...)...)
	b, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("check.sh %s: exit %d\n%s", strings.Join(args, " "), code, b)
	var r report
	j, err := os.ReadFile(filepath.Join(out, "check.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(j, &r); err != nil {
		t.Fatalf("check.json is not JSON: %v\n%s", err, j)
	}
	if md, err := os.ReadFile(filepath.Join(out, "check.md")); err != nil || !strings.Contains(string(md), "| step | status |") {
		t.Errorf("check.md: %v\n%s", err, md)
	}
	var names []string
	for _, s := range r.Steps {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != strings.Join(steps, ",") {
		t.Errorf("steps %v, want %v", names, steps)
	}
	return code, r, string(b)
}

// TestCheckWithoutGPU runs the script as CI can: the GPU steps are skipped,
// each with its reason, the inventory and CPU steps run, and it exits 0.
func TestCheckWithoutGPU(t *testing.T) {
	ark := buildArk(t)
	code, r, _ := runCheck(t, "--ark", ark, "--no-gpu", "--quick")
	if code != 0 || r.CorrectnessFailed {
		t.Errorf("exit %d, correctness_failed %v; want 0, false", code, r.CorrectnessFailed)
	}
	if r.GPUReason != "--no-gpu given" || !strings.Contains(r.Ark, "cuda kernels: sm_80, sm_90, compute_90") {
		t.Errorf("gpu_reason %q, ark %q", r.GPUReason, r.Ark)
	}
	for _, s := range r.Steps {
		switch s.Name {
		case "inventory", "cpu-scaling":
			if s.Status != "passed" || len(s.Result) < 2 || s.Result[0] != '{' || s.Figures == "" {
				t.Errorf("%s: %s (%s), figures %q, result %.80s", s.Name, s.Status, s.Reason, s.Figures, s.Result)
			}
		case "serving":
			// Skipped either way: no GPU, or (today) no serving benchmark.
			if s.Status != "skipped" || s.Reason == "" {
				t.Errorf("serving: %s %q", s.Status, s.Reason)
			}
		default:
			if s.Status != "skipped" || s.Reason != "--no-gpu given" {
				t.Errorf("%s: %s %q; want skipped for --no-gpu", s.Name, s.Status, s.Reason)
			}
		}
	}
}

// TestCheckFailuresDoNotStopTheRest: with an ark whose agent never answers
// (the inventory step times out) and whose trainer benchmark reports ranks
// that ended apart (a correctness failure), every step still runs and the
// script exits 1.
func TestCheckFailuresDoNotStopTheRest(t *testing.T) {
	ark := buildArk(t)
	standIn := filepath.Join(t.TempDir(), "ark")
	script := `#!/bin/sh
case "$1 $2" in
"node status") sleep 60 ;;
"bench train") echo '{"runs": [{"ranks": 2, "params_identical": false}, {"ranks": 2, "independent": true, "params_identical": false}], "scaling_efficiency": 1}' ;;
*) exec ` + ark + ` "$@" ;;
esac
`
	if err := os.WriteFile(standIn, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	code, r, _ := runCheck(t, "--ark", standIn, "--no-gpu", "--quick", "--limit", "3")
	if code != 1 || !r.CorrectnessFailed {
		t.Errorf("exit %d, correctness_failed %v; want 1, true", code, r.CorrectnessFailed)
	}
	status := map[string]string{}
	for _, s := range r.Steps {
		status[s.Name] = s.Status + ": " + s.Reason
	}
	if !strings.HasPrefix(status["inventory"], "timeout: ran past its 3s limit") {
		t.Errorf("inventory: %q", status["inventory"])
	}
	if !strings.HasPrefix(status["cpu-scaling"], "failed: 1 data-parallel run(s) ended with ranks holding different parameters") {
		t.Errorf("cpu-scaling: %q (the independent control run must not count)", status["cpu-scaling"])
	}
}
