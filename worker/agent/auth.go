package agent

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/ark-sched/ark/worker/driver"
)

// The agent's HTTP endpoints are authenticated:
//
//   - logs (GET /v1/allocations/{id}/logs) need the node's logs key, which
//     the servers hand out at registration and present when they fetch
//     logs (identity.go); they are open like the servers' API only when
//     the agent has neither a token nor a key;
//   - task reports (POST .../report) need the allocation's task token, a
//     MAC of the allocation ID under a key only this agent holds
//     (DataDir/report-key), given to the task as ARK_TASK_TOKEN. It
//     survives agent restarts, so re-attached tasks keep reporting.

// loadReportKey reads the agent's report key, creating it on first start.
func loadReportKey(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, "report-key")
	b, err := os.ReadFile(path)
	if err == nil {
		k, derr := hex.DecodeString(strings.TrimSpace(string(b)))
		if derr != nil || len(k) != 32 {
			return nil, fmt.Errorf("report key %s is not 64 hex digits", path)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read report key: %w", err)
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := driver.WriteFileAtomic(path, []byte(hex.EncodeToString(k)+"\n")); err != nil {
		return nil, fmt.Errorf("save report key: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

// taskToken is what allocation id's task presents with its reports.
func (a *Agent) taskToken(id string) string {
	m := hmac.New(sha256.New, a.reportKey)
	m.Write([]byte("ark-task-report\x00" + id))
	return hex.EncodeToString(m.Sum(nil))
}

// checkBearer reports whether r carries want as its bearer token.
func checkBearer(r *http.Request, want string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
