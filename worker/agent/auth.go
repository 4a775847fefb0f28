package agent

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
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
	v, err := readSecretFile(dataDir, reportKeyFile)
	if err != nil {
		return nil, err
	}
	if v != "" {
		k, err := hex.DecodeString(v)
		if err != nil || len(k) != 32 {
			return nil, fmt.Errorf("%s is not 64 hex digits", filepath.Join(dataDir, reportKeyFile))
		}
		return k, nil
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := writeSecretFile(dataDir, reportKeyFile, hex.EncodeToString(k)); err != nil {
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
