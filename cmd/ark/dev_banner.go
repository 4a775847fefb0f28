package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/server"
)

// devLogName is the file under the data dir that ark dev logs to.
const devLogName = "dev.log"

// devLogger is the dev cluster's logger: g's (stderr, --log-level) when
// file is "", else one that appends to file at info level.
func devLogger(g *globals, file string) (*zap.Logger, error) {
	if file == "" {
		return g.logger()
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, fmt.Errorf("create the dev data dir: %w", err)
	}
	cfg := zap.NewDevelopmentConfig()
	cfg.Level = zap.NewAtomicLevelAt(zapcore.InfoLevel)
	cfg.DisableStacktrace = true
	cfg.Development = false
	cfg.EncoderConfig.EncodeLevel = zapcore.CapitalLevelEncoder
	cfg.OutputPaths = []string{file}
	cfg.ErrorOutputPaths = []string{file}
	log, err := cfg.Build()
	if err != nil {
		return nil, fmt.Errorf("open the dev log %s: %w", file, err)
	}
	return log, nil
}

// waitDevNodes waits (a few seconds at most) until the dev agents have
// registered and are ready, so that the banner's next step shows them.
func waitDevNodes(ctx context.Context, srv *server.Server, agents int) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; {
		ready := 0
		for _, n := range srv.Store().Snapshot().Nodes(nil) {
			if n.Status == api.NodeReady {
				ready++
			}
		}
		if ready >= agents {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// printDevBanner is what ark dev says once its cluster serves: where the
// API is, what runs, where the logs are, and what to run next.
func printDevBanner(w io.Writer, apiAddr string, agents []string, fakeGPUs, dataDir, logFile string) {
	fmt.Fprintf(w, "Ark dev cluster running (Ctrl-C stops it)\n")
	fmt.Fprintf(w, "  API     %s\n", apiAddr)
	fmt.Fprintf(w, "  Agents  %s, %s fake GPUs each\n", strings.Join(agents, ", "), fakeGPUs)
	fmt.Fprintf(w, "  Data    %s\n", dataDir)
	if logFile != "" {
		fmt.Fprintf(w, "  Logs    %s (--log-level info shows them here)\n", logFile)
	}
	next := "ark node list"
	if apiAddr != defaultAddr && os.Getenv("ARK_ADDR") != apiAddr {
		// Commands ask the default address unless told otherwise.
		next += " --addr " + apiAddr
	}
	fmt.Fprintf(w, "next: %s\n", next)
}
