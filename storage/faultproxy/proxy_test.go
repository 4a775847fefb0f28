package faultproxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestFaults(t *testing.T) {
	body := strings.Repeat("x", 10_000)
	var served atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if r.Host == "" || !strings.HasPrefix(r.Host, "127.0.0.1:") {
			t.Errorf("Host header %q not kept", r.Host)
		}
		b, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPut && len(b) != len(body) {
			t.Errorf("backend got %d bytes", len(b))
		}
		w.Header().Set("Content-Length", "10000")
		io.WriteString(w, body)
	}))
	defer backend.Close()

	tests := []struct {
		name       string
		faults     Faults
		method     string
		wantStatus int // 0: a transport error
		wantBody   bool
		served     int
	}{
		{"none", Faults{}, http.MethodGet, 200, true, 1},
		{"error", Faults{Error: 1}, http.MethodGet, 500, false, 0},
		{"drop request", Faults{DropRequest: 1}, http.MethodPut, 0, false, 0},
		{"drop after", Faults{DropAfter: 1}, http.MethodPut, 0, false, 1},
		{"drop response", Faults{DropResponse: 1}, http.MethodGet, 200, false, 1},
		{"stall", Faults{Stall: 1, StallFor: 50 * time.Millisecond}, http.MethodGet, 200, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Start(backend.URL, tt.faults, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			served.Store(0)
			var rb io.Reader
			if tt.method == http.MethodPut {
				rb = bytes.NewReader([]byte(body))
			}
			req, _ := http.NewRequest(tt.method, p.URL()+"/bucket/key", rb)
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if tt.wantStatus == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("got status %d, want a dropped connection", resp.StatusCode)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				b, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.wantStatus {
					t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
				}
				if tt.wantBody && (rerr != nil || string(b) != body) {
					t.Errorf("body: %d bytes, %v", len(b), rerr)
				}
				if tt.name == "drop response" && rerr == nil {
					t.Errorf("read %d bytes without error, want a cut body", len(b))
				}
			}
			// No sleep for "a late backend call": the proxy calls the
			// backend, if at all, before it answers or hangs up, so once
			// the client has its answer or its error the count is final.
			if got := served.Load(); got != int64(tt.served) {
				t.Errorf("backend served %d requests, want %d", got, tt.served)
			}
			if tt.faults.Stall > 0 && time.Since(start) < tt.faults.StallFor {
				t.Errorf("no stall")
			}
			if st := p.Stats(); st.Requests != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}
