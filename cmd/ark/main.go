package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ark-sched/ark/internal/pki"
	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/worker/driver"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks an error as a usage or invalid-input error (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// silentError carries an exit code for a failure already reported.
type silentError struct{ code int }

func (e silentError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// globals are the flags every command shares.
type globals struct {
	addr     string
	token    string
	output   string
	logLevel string
	tls      pki.Files
}

func (g *globals) client() (*client.Client, error) {
	c, err := client.New(g.addr)
	if err != nil {
		return nil, err
	}
	c.Token = g.token
	if g.tls.Enabled() {
		id, err := g.identity(false)
		if err != nil {
			return nil, err
		}
		c.SetTLS(id.HTTPClient())
	}
	return c, nil
}

func (g *globals) json() bool { return g.output == "json" }

func (g *globals) logger() (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.Set(g.logLevel); err != nil {
		return nil, usagef("--log-level: %v", err)
	}
	cfg := zap.NewDevelopmentConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.DisableStacktrace = true
	cfg.Development = false
	cfg.EncoderConfig.EncodeLevel = zapcore.CapitalLevelEncoder
	return cfg.Build()
}

// defaultAddr is where client commands look for a server by default.
const defaultAddr = "http://127.0.0.1:4680"

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "ark",
		Short:         "Ark schedules fine-tune, eval and inference jobs onto GPU nodes",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if g.output != "" && g.output != "json" && g.output != "text" {
				return usagef("--output must be text or json, got %q", g.output)
			}
			if err := unusedGlobalFlag(cmd); err != nil {
				return err
			}
			return checkOutputMode(g, cmd)
		},
	}
	defAddr := os.Getenv("ARK_ADDR")
	if defAddr == "" {
		defAddr = defaultAddr
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.addr, "addr", defAddr, "server address(es), comma-separated (env ARK_ADDR)")
	pf.StringVar(&g.token, "token", os.Getenv("ARK_TOKEN"), "API token (env ARK_TOKEN)")
	pf.StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level for servers and agents: debug, info, warn, error")
	addTLSFlags(pf, &g.tls)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	root.AddCommand(
		newServerCmd(g),
		newAgentCmd(g),
		newDevCmd(g),
		newJobCmd(g),
		newNodeCmd(g),
		newOperatorCmd(g),
		newInferCmd(g),
		newBenchCmd(g),
		newExampleCmd(),
		newTLSCmd(),
	)
	addVersion(root, g)
	for _, extra := range extraCommands {
		root.AddCommand(extra(g))
	}
	addExamples(root)
	scopeHelp(root)
	return root
}

// extraCommands lets a command defined in its own file (ckpt.go) add itself.
var extraCommands []func(*globals) *cobra.Command

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("want %s, got %d argument(s)", names, len(args))
		}
		return nil
	}
}

func main() {
	// When the agent started this process to supervise a task, that is
	// all it does.
	driver.MaybeSupervise()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	os.Exit(exitCode(err))
}

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var se silentError
	if errors.As(err, &se) {
		return se.code
	}
	fmt.Fprintln(os.Stderr, "error:", err)
	var ue usageError
	var ae *client.APIError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ae) && (ae.StatusCode == 400 || ae.StatusCode == 413):
		return exitUsage
	case strings.HasPrefix(err.Error(), "unknown command"), strings.HasPrefix(err.Error(), "unknown flag"),
		strings.Contains(err.Error(), "accepts ") && strings.Contains(err.Error(), "arg(s)"):
		return exitUsage
	}
	return exitFailure
}
