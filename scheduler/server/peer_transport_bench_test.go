package server

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkPeerTransport is a follower forwarding small writes to the
// leader from 64 requests at once, as heartbeats and reports arrive: with
// Go's default transport (2 idle connections per host) and with the
// servers' peerTransport. dials/op is new connections per request.
func BenchmarkPeerTransport(b *testing.B) {
	for _, c := range []struct {
		name string
		t    func() *http.Transport
	}{
		{"default", func() *http.Transport { return http.DefaultTransport.(*http.Transport).Clone() }},
		{"peer", func() *http.Transport { return peerTransport(nil) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			var dials atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				_, _ = w.Write([]byte(`{"ok":true}`))
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					dials.Add(1)
				}
			}
			srv.Start()
			defer srv.Close()
			t := c.t()
			defer t.CloseIdleConnections()
			client := &http.Client{Transport: t}
			b.SetParallelism(32) // 64 goroutines on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Post(srv.URL+"/v1/nodes/x/heartbeat", "application/json", strings.NewReader(`{"status":"ready"}`))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
			b.ReportMetric(float64(dials.Load())/float64(b.N), "dials/op")
		})
	}
}
