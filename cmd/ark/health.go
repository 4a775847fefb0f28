package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// ark health exists for container health checks: the image is FROM scratch,
// so there is no shell or curl to run a check with, but Docker and compose
// can exec the one binary the image holds (exec form, no shell).
func init() { extraCommands = append(extraCommands, newHealthCmd) }

func newHealthCmd(g *globals) *cobra.Command {
	var agent string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Exit 0 if the server at --addr knows a leader (or, with --agent, the agent answers): for container health checks",
		Long: `Without --agent: ask the first server of --addr for the cluster's leader
(GET /v1/status/leader, no token needed); exit 0 if it knows one, 1 if not.
A server that answers but has no leader is unhealthy for routing work to.

With --agent HOST:PORT: ask the agent's HTTP listener for GET /metrics;
exit 0 on 200.

Exit 1 on any failure, with the reason on stderr.`,
		Example: `  ark health --addr http://10.0.0.11:4680
  ark health --agent 10.0.0.21:4682
  # a compose health check (exec form: the image has no shell)
  test: [CMD, /usr/local/bin/ark, health, --addr, "http://10.0.0.11:4680"]`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if agent != "" {
				return checkAgent(ctx, g, agent)
			}
			return checkServer(ctx, g, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&agent, "agent", "", "check the agent listening at HOST:PORT (its --http address) instead of a server")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	return cmd
}

// checkServer asks only the first address: a health check is about this
// server, and the client's fail-over to others would hide its failure.
func checkServer(ctx context.Context, g *globals, out io.Writer) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	first := c.Addrs()[0]
	if c, err = (&globals{addr: first, token: g.token, tls: g.tls}).client(); err != nil {
		return err
	}
	c.RetryFor = 0
	l, err := c.Leader(ctx)
	if err != nil {
		return fmt.Errorf("server %s: %w", first, err)
	}
	fmt.Fprintf(out, "leader %s at %s\n", l.Leader, l.Address)
	return nil
}

func checkAgent(ctx context.Context, g *globals, addr string) error {
	hc, scheme := http.DefaultClient, "http"
	id, err := g.identity(false)
	if err != nil {
		return err
	}
	if id != nil {
		hc, scheme = &http.Client{Transport: &http.Transport{TLSClientConfig: id.HTTPClient()}}, "https"
	}
	u := scheme + "://" + addr + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return usagef("--agent %q: %v", addr, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("agent %s: %w", addr, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("agent %s: GET /metrics answered %s", addr, resp.Status)
	}
	return nil
}
