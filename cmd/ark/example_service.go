package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// newExampleServiceCmd is a small HTTP service for example inference
// jobs run by the exec driver (and the rolling-update tests): it listens
// on ARK_NODE_ADDR:ARK_PORT, answers GET /v1/health, and answers any
// other path with who answered (rank, allocation, --message) after
// --delay, like a model that takes time per request. On SIGTERM it stops
// taking connections and finishes the requests it has.
func newExampleServiceCmd() *cobra.Command {
	var listen, message string
	var delay, startup time.Duration
	cmd := &cobra.Command{
		Use:   "http-service",
		Short: "Serve HTTP on ARK_PORT: /v1/health, and who answered on any other path",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if listen == "" {
				port := os.Getenv("ARK_PORT")
				if port == "" || port == "0" {
					return errors.New("ARK_PORT is not set: run this as an inference task, or give --listen")
				}
				listen = net.JoinHostPort(os.Getenv("ARK_NODE_ADDR"), port)
			}
			// A model loads before it serves: until then health fails.
			up := time.Now().Add(startup)
			mux := http.NewServeMux()
			// Its load, in the health answer the agent passes on to the
			// leader's autoscaler.
			var inflight, answered atomic.Int64
			mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, _ *http.Request) {
				if time.Now().Before(up) {
					http.Error(w, "starting", http.StatusServiceUnavailable)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]any{"status": "ok", "running": inflight.Load(), "waiting": 0, "requests": answered.Load()})
			})
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				inflight.Add(1)
				defer inflight.Add(-1)
				defer answered.Add(1)
				select {
				case <-time.After(delay):
				case <-r.Context().Done():
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]string{"message": message, "rank": os.Getenv("RANK"),
					"alloc": os.Getenv("ARK_ALLOC_ID"), "path": r.URL.Path})
			})
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(cmd.OutOrStdout(), "serving on %s\n", ln.Addr())
			return serveUntilDone(ctx, srv, ln, 30*time.Second, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "", "address to serve on (default ARK_NODE_ADDR:ARK_PORT)")
	f.StringVar(&message, "message", "hello", "what every answer says (a version, in the rolling-update examples)")
	f.DurationVar(&delay, "delay", 0, "time each request takes")
	f.DurationVar(&startup, "startup", 0, "time before the health check passes (a model loading)")
	return cmd
}
