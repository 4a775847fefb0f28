package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/ark-sched/ark/internal/netlimit"
)

// GET /metrics on the API address takes any token when tokens are on, like
// /v1/nodes and /v1/queues, which show as much. Config.MetricsAddr adds a
// listener that serves /metrics alone without a token, for a Prometheus on
// a private network that should hold no token.

// metricsHandler serves the server's registry in the Prometheus text (or
// protobuf) format; a collector that fails answers 500 rather than a
// partial scrape that would look like a drop to zero.
func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.met.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.HTTPErrorOnError,
		ErrorLog:            zap.NewStdLog(s.log.Named("metrics")),
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// metricsRoutes adds GET /metrics to the API.
func (s *Server) metricsRoutes(mux *routeMux) {
	mux.HandleFunc("GET /metrics", s.auth(anyToken, s.metricsHandler().ServeHTTP))
}

// listenMetrics binds Config.MetricsAddr, when set.
func (s *Server) listenMetrics() error {
	if s.cfg.MetricsAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen for metrics on %s: %w", s.cfg.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metricsHandler())
	s.metricsLn = netlimit.PerClient(ln, s.lim.MaxConnsPerClient)
	s.metricsSrv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       s.lim.IdleTimeout,
		ErrorLog:          zap.NewStdLog(s.log.Named("metrics")),
	}
	return nil
}

// MetricsAddr is the address of the unauthenticated metrics listener, or
// "" when there is none.
func (s *Server) MetricsAddr() string {
	if s.metricsLn == nil {
		return ""
	}
	return s.metricsLn.Addr().String()
}

// serveMetrics serves the metrics listener until it is shut down.
func (s *Server) serveMetrics() {
	if s.metricsSrv == nil {
		return
	}
	if err := s.metricsSrv.Serve(s.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Warn("metrics listener stopped", zap.Error(err))
	}
}

// closeMetrics stops the metrics listener and the leader watch.
func (s *Server) closeMetrics(ctx context.Context) {
	if s.metricsSrv != nil {
		_ = s.metricsSrv.Shutdown(ctx)
	}
	if s.metricsLn != nil {
		s.metricsLn.Close() // when Run never served on it
	}
	if s.stopLeaderWatch != nil {
		s.stopLeaderWatch()
	}
}

// instrumentAPI counts every request by the route pattern the router
// matched ("GET /v1/jobs/{id}", never the path: a caller cannot mint new
// series) and its status code. It wraps the whole handler chain, so
// requests refused before routing (a missing client certificate) count
// under "unmatched".
func (s *Server) instrumentAPI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rw, r)
		route := r.Pattern // set on this request by the router
		if route == "" {
			route = "unmatched"
		}
		s.met.apiRequests.WithLabelValues(route, strconv.Itoa(rw.code)).Inc()
		s.met.apiLatency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// registerMetrics registers the collectors that read the server's state
// and Raft node, watches for leader changes and binds the metrics
// listener. New calls it once the server is built.
func (s *Server) registerMetrics() error {
	var configured []string
	for name := range s.cfg.Queues {
		configured = append(configured, name)
	}
	s.met.queues = newQueueLabels(configured)
	if err := s.met.reg.Register(&stateCollector{s: s, queues: s.met.queues}); err != nil {
		return fmt.Errorf("register state metrics: %w", err)
	}
	if err := s.met.reg.Register(raftCollector{s}); err != nil {
		return fmt.Errorf("register raft metrics: %w", err)
	}
	if err := s.listenMetrics(); err != nil {
		return err
	}
	s.stopLeaderWatch = s.raft.WatchLeader(func(string) { s.met.leaderChanges.Inc() })
	return nil
}
