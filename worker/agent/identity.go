package agent

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/ark-sched/ark/worker/driver"
)

// The node's identity, kept in the data dir (each file 0600, the agent's):
//
//   - node-id: the node's ID, so that a restarted agent registers the same
//     node again (and keeps its drain, eligibility and allocations);
//   - node-secret: the secret the servers handed out at the node's first
//     registration. It is the agent's bearer token for everything after
//     (the agent token only registers new nodes), and what proves the node
//     is this one when the agent registers again after a restart;
//   - logs-key: what the servers present when they fetch logs from this
//     agent; calls without it are refused.
//
// None of them is put in a task's environment.
const (
	nodeSecretFile = "node-secret"
	logsKeyFile    = "logs-key"
	reportKeyFile  = "report-key" // the key of task tokens (auth.go)
)

// readSecretFile reads a hex secret of the data dir; "" when there is none.
func readSecretFile(dataDir, name string) (string, error) {
	path := filepath.Join(dataDir, name)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	v := strings.TrimSpace(string(b))
	if _, err := hex.DecodeString(v); err != nil || len(v) < 32 {
		return "", fmt.Errorf("%s is not a hex secret of at least 32 digits; remove it and restart the agent (a node secret: the node then registers anew)", path)
	}
	return v, nil
}

// writeSecretFile stores a secret of the data dir, readable by the agent only.
func writeSecretFile(dataDir, name, value string) error {
	path := filepath.Join(dataDir, name)
	if err := driver.WriteFileAtomic(path, []byte(value+"\n")); err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	// WriteFileAtomic creates 0600, but a leftover temporary file keeps
	// whatever mode it had.
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("restrict %s: %w", name, err)
	}
	return nil
}

// setLogsKey records the servers' key for this node's logs.
func (a *Agent) setLogsKey(key string) error {
	a.mu.Lock()
	same := a.logsKey == key
	a.logsKey = key
	a.mu.Unlock()
	if same || key == "" {
		return nil
	}
	return writeSecretFile(a.cfg.DataDir, logsKeyFile, key)
}

// logsAllowed reports whether r may read this node's task logs: with the
// logs key the servers gave this node. An agent that has none is open only
// when it runs without a token (dev mode, servers without access control);
// one given a token refuses every call until the servers hand it a key.
func (a *Agent) logsAllowed(r *http.Request) bool {
	a.mu.Lock()
	key := a.logsKey
	a.mu.Unlock()
	if key == "" {
		return a.cfg.Token == ""
	}
	return checkBearer(r, key)
}
