package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestHTTPOnRaftPort: an HTTP request to the Raft port, plain or TLS, gets
// a 400 naming the API address at once (not a hang and EOF), is logged
// once however often it comes, and Raft logs no decode error or refused
// handshake for it; the cluster keeps working.
func TestHTTPOnRaftPort(t *testing.T) {
	p := newTestPKI(t, 1)
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"plain", false}, {"tls", true}} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zap.DebugLevel)
			cfg := Config{Name: "s1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", Bootstrap: true,
				APIAddr: "127.0.0.1:4680", Logger: zap.New(core)}
			if tc.tls {
				cfg.TLS = raftTLS(t, p.servers[0])
			}
			n, err := Open(cfg, &countFSM{})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			leaderOf(t, []*Node{n})
			hc := &http.Client{Timeout: 5 * time.Second}
			for i := range 3 {
				resp, err := hc.Get(fmt.Sprintf("http://%s/v1/jobs?try=%d", n.Addr(), i))
				if err != nil {
					t.Fatalf("GET on the raft port: %v", err)
				}
				var body struct{ Error string }
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(data, &body) != nil ||
					!strings.Contains(body.Error, "this is the Raft port") || !strings.Contains(body.Error, "http://127.0.0.1:4680") {
					t.Errorf("answer %d %q", resp.StatusCode, data)
				}
			}
			if _, _, err := n.Apply(t.Context(), []byte("after")); err != nil {
				t.Errorf("apply after the stray requests: %v", err)
			}
			if got := logs.FilterMessageSnippet("HTTP request reached the raft port").Len(); got != 1 {
				t.Errorf("logged the stray requests %d times, want once", got)
			}
			for _, e := range logs.All() {
				if strings.Contains(e.Message, "decode") || strings.Contains(e.Message, "refused a raft connection") {
					t.Errorf("logged %q %v", e.Message, e.ContextMap())
				}
			}
		})
	}
}
