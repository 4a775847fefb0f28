package agent

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ark-sched/ark/internal/netlimit"
)

// maxConnsPerClient caps the open connections of one address on each of
// the agent's listeners.
const maxConnsPerClient = 256

// listener pairs a listener with what it serves.
type listener struct {
	ln      net.Listener
	handler http.Handler
}

// listeners are the agent's HTTP listeners. Without TLS one serves both
// the servers (logs) and the tasks (reports). With TLS the public one
// takes only servers, and tasks report on a loopback one.
func (a *Agent) listeners() []listener {
	var out []listener
	if a.metricsLn != nil {
		all, _ := a.metricsHandlers()
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", all)
		out = append(out, listener{a.metricsLn, mux})
	}
	if a.reportLn == nil {
		return append(out, listener{a.ln, a.routes()})
	}
	logs := http.NewServeMux()
	logs.HandleFunc("GET /v1/allocations/{id}/logs", a.handleLogs)
	logs.Handle("GET /metrics", a.metricsHandler())
	reports := http.NewServeMux()
	reports.HandleFunc("POST /v1/allocations/{id}/report", a.handleReport)
	reports.HandleFunc("GET /v1/allocations/{id}/rules", a.handleRules)
	return append(out, listener{a.ln, logs}, listener{a.reportLn, reports})
}

// reportAddr is where a task reports to its agent (ARK_AGENT_ADDR).
func (a *Agent) reportAddr() string {
	if a.reportLn != nil {
		return a.reportLn.Addr().String()
	}
	return a.ln.Addr().String()
}

// newAgentHTTP bounds what a client can hold: a report's body must arrive
// in time (logs are GETs, and a followed log streams for as long as the
// task runs, so there is no write timeout).
func newAgentHTTP(h http.Handler) *http.Server {
	return &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(30 * time.Second))
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
}

// listenReports binds the tasks' loopback listener on the port the last
// run used (kept in the data dir), so that tasks an agent restart
// re-attaches to still reach it at their ARK_AGENT_ADDR; a port taken
// meanwhile gives a new one.
func listenReports(dataDir string) (net.Listener, error) {
	path := filepath.Join(dataDir, "report-port")
	if b, err := os.ReadFile(path); err == nil {
		if port, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && port > 0 {
			if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
				return netlimit.PerClient(ln, maxConnsPerClient), nil
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for task reports: %w", err)
	}
	ln = netlimit.PerClient(ln, maxConnsPerClient)
	port := ln.Addr().(*net.TCPAddr).Port
	if err := os.WriteFile(path, []byte(strconv.Itoa(port)+"\n"), 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("record the task report port: %w", err)
	}
	return ln, nil
}
