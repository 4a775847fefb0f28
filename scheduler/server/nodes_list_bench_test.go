package server

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/state"
)

// listServer is a Server with only a state of n nodes of 8 GPUs each
// (the shape `ark bench cluster` registers), enough for the node list's
// handler.
func listServer(tb testing.TB, n int) *Server {
	tb.Helper()
	fsm := state.NewFSM(zap.NewNop())
	for i := range n {
		node := &api.Node{ID: fmt.Sprintf("id%05d", i), Name: fmt.Sprintf("sim-%05d", i), Address: "127.0.0.1",
			AgentAddr: "127.0.0.1:1", Status: api.NodeReady, CPUMilli: 96000, MemoryBytes: 384 << 30, Fake: true,
			Fabric: fmt.Sprintf("rack-%03d", i/32), SecretDigest: "abcdef", RegisterTime: time.Now().UTC()}
		for g := range 8 {
			node.GPUs = append(node.GPUs, api.GPU{Index: g, UUID: fmt.Sprintf("GPU-fake-%05d-%d", i, g), Model: "H100",
				MemoryBytes: 80 << 30, NUMANode: g / 4, NVLinkPeers: []int{0, 1, 2, 3, 4, 5, 6, 7}})
		}
		data, err := state.Encode(state.UpsertNodeType, &state.UpsertNodeRequest{Node: node})
		if err != nil {
			tb.Fatal(err)
		}
		if resp := fsm.ApplyEntry(uint64(i+1), data); resp != nil {
			if err, ok := resp.(error); ok {
				tb.Fatal(err)
			}
		}
	}
	return &Server{fsm: fsm, store: fsm.Store(), log: zap.NewNop()}
}

// BenchmarkListNodes is GET /v1/nodes of 10,000 nodes, whole and by pages
// of 1,000, through the handler (what `ark node list` and the cluster
// bench ask).
func BenchmarkListNodes(b *testing.B) {
	s := listServer(b, 10000)
	for _, c := range []struct{ name, query string }{
		{"all", ""},
		{"page1000", "?per_page=1000"},
	} {
		b.Run(c.name, func(b *testing.B) {
			var bytes int64
			for b.Loop() {
				w := httptest.NewRecorder()
				s.handleListNodes(w, httptest.NewRequest(http.MethodGet, "/v1/nodes"+c.query, nil))
				if w.Code != http.StatusOK {
					b.Fatalf("%d: %s", w.Code, w.Body)
				}
				bytes = int64(w.Body.Len())
				_, _ = io.Copy(io.Discard, w.Body)
			}
			b.ReportMetric(float64(bytes), "bytes/op")
		})
	}
}
