package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeSpec writes a job spec into a temporary file and returns its path.
func writeSpec(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "job.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestJobValidateOffline: with no server at --addr, validate checks the
// spec alone and says it did (exit 0); --cluster makes the cluster's
// answer required (exit 1, naming the address).
func TestJobValidateOffline(t *testing.T) {
	spec := writeSpec(t, "name: v\nkind: batch\nresources: {gpus: 1}\ntask: {driver: exec, exec: {command: [\"true\"]}}\n")
	closed := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	code, out, _ := runArk(t, "job", "validate", spec, "--addr", closed)
	if code != exitOK || !strings.Contains(out, "is valid") || !strings.Contains(out, "not checked against a cluster (no Ark server at http://"+closed) {
		t.Errorf("no server, default: exit %d, output %q", code, out)
	}
	code, out, _ = runArk(t, "job", "validate", spec, "--addr", closed, "--cluster")
	if code != exitFailure || !strings.Contains(out, "validate against the cluster: no Ark server at http://"+closed) {
		t.Errorf("no server, --cluster: exit %d, output %q", code, out)
	}
	code, out, _ = runArk(t, "job", "validate", spec, "--addr", closed, "--offline", "-o", "json")
	var res validateResult
	if code != exitOK || json.Unmarshal([]byte(out), &res) != nil || res.Offline != "--offline" || res.Spec == nil || res.Spec.Name != "v" {
		t.Errorf("--offline -o json: exit %d, output %q", code, out)
	}
}

// TestJobValidateCluster: against a server with one 1-GPU node, validate
// reports a 4-GPU job as "cannot fit" with the leader's reason (exit 1),
// a 1-GPU job as placed now, and submits nothing.
func TestJobValidateCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	t.Parallel()
	s := newSrv(t)
	s.start(t)
	startAgents(t, s.http, "1xH200:141Gi", []string{"a"})
	big := writeSpec(t, "name: big\nkind: batch\nresources: {gpus: 4}\ntask: {driver: exec, exec: {command: [\"true\"]}}\n")
	small := writeSpec(t, "name: small\nkind: batch\nresources: {gpus: 1}\ntask: {driver: exec, exec: {command: [\"true\"]}}\n")

	code, out, _ := runArk(t, "job", "validate", big, "--addr", s.http)
	if code != exitFailure {
		t.Errorf("big: exit %d, want %d: %s", code, exitFailure, out)
	}
	for _, w := range []string{"is valid", "cannot fit: ", "cannot fit on this cluster", "the largest ready node has 1"} {
		if !strings.Contains(out, w) {
			t.Errorf("big: output %q lacks %q", out, w)
		}
	}
	code, out, _ = runArk(t, "job", "validate", big, "--addr", s.http, "--cluster", "-o", "json")
	var res validateResult
	if err := json.Unmarshal([]byte(out), &res); code != exitFailure || err != nil || res.Cluster == nil || !res.Cluster.CannotFit || res.Cluster.Fits || len(res.Cluster.Reasons) == 0 {
		t.Errorf("big -o json: exit %d, output %q", code, out)
	}
	code, out, _ = runArk(t, "job", "validate", small, "--addr", s.http, "--cluster")
	if code != exitOK || !strings.Contains(out, "the cluster would place it now") {
		t.Errorf("small: exit %d, output %q", code, out)
	}
	if list, err := cli(t, s.http, "job", "list", "-o", "json"); err != nil || strings.TrimSpace(list) != "[]" {
		t.Errorf("validate submitted something: %v %s", err, list)
	}
}
