package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDevBanner: ark dev without --log-level prints one banner (the API
// address, the agents, "next: ark node list") and no log lines; its logs
// are in DATA-DIR/dev.log, with no raw format verb in any line.
func TestDevBanner(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freeDevPort(t))
	p := start(t, "dev", "--data-dir", dir, "--http", addr)
	var out string
	waitUntil(t, 30*time.Second, "the banner", func() bool {
		b, _ := os.ReadFile(p.out)
		out = string(b)
		return strings.Contains(out, "next: ark node list")
	})
	for _, want := range []string{
		"API     http://" + addr,
		"next: ark node list --addr http://" + addr,
		"Agents  dev-1, dev-2, 4xH200:141Gi fake GPUs each",
		"Logs    " + filepath.Join(dir, devLogName),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "next: ark node list") != 1 || strings.Contains(out, "INFO") || strings.Contains(out, "WARN") {
		t.Errorf("ark dev printed more than its banner:\n%s", out)
	}
	// The banner comes once the agents are ready: its next step shows them.
	if nodes, err := cli(t, addr, "node", "list"); err != nil || !strings.Contains(nodes, "dev-1") || !strings.Contains(nodes, "dev-2") {
		t.Errorf("ark node list after the banner (%v):\n%s", err, nodes)
	}
	logs, err := os.ReadFile(filepath.Join(dir, devLogName))
	if err != nil || !strings.Contains(string(logs), "dev cluster running") {
		t.Fatalf("dev.log (%v):\n%s", err, logs)
	}
	for _, line := range strings.Split(string(logs), "\n") {
		if strings.Contains(line, "%+v") || strings.Contains(line, "%v") {
			t.Errorf("a raw format verb in a log line: %s", line)
		}
	}
}
