package collbench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestRunInProcess runs a tiny benchmark with goroutine ranks and checks the
// report carries every figure the issue names.
func TestRunInProcess(t *testing.T) {
	res, err := Run(context.Background(), Config{
		Ranks: []int{2, 3}, Transports: []string{"tcp", "shm"}, MinBytes: 8, MaxBytes: 64 << 10,
		PerSize: 2 * time.Millisecond, TuneMax: 4 << 10, Bucket: 16 << 10, InProcess: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, res); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"rows", "small_latency_us", "tcp_rtt_us", "overlap_efficiency"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	rows := m["rows"].([]any)
	if len(rows) != 2*2*14 {
		t.Errorf("%d rows, want 56", len(rows))
	}
	for _, k := range []string{"ranks", "transport", "bytes", "algbw_gbps", "busbw_gbps", "p2p_gbps", "algo"} {
		if _, ok := rows[0].(map[string]any)[k]; !ok {
			t.Errorf("row lacks %q", k)
		}
	}
	if res.SmallLatencyUS <= 0 || res.TCPRTTus <= 0 || res.P2P["tcp"] <= 0 || res.P2P["shm"] <= 0 {
		t.Errorf("missing figures: %+v", res)
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| size | count | algo |", "## 3 ranks, shm", "TCP round trip", "overlap efficiency"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md.String())
		}
	}
}
