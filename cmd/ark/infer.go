package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/worker/serve"
)

// newInferCmd is `ark infer JOB --prompt ...`: ask a running inference job
// through its endpoint. Without --model, --chat or --stream it uses the
// builtin server's /v1/generate as it always did; with any of them, the
// OpenAI API (/v1/completions, or /v1/chat/completions with --chat).
func newInferCmd(g *globals) *cobra.Command {
	var (
		req          serve.GenerateRequest
		model        string
		chat, stream bool
		timeout      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "infer JOB",
		Short: "Send a prompt to a running builtin inference job (any ready replica)",
		Long: `Sends a prompt to a running inference job through its endpoint on the servers
(/v1/services/JOB/...; any ready replica answers) and prints the answer.

By default the prompt is continued by the served base (/v1/generate) and printed
with its continuation. --model NAME asks the base or a LoRA adapter by name
(/v1/completions); --chat sends the prompt as one user message to
/v1/chat/completions and prints the assistant's answer; --stream prints the text
as the replica makes it (Server-Sent Events). -o json prints the answer object
(OpenAI's with --model or --chat); it cannot be combined with --stream.
Until a replica is ready (starting, or scaled to zero) it retries for --timeout.`,
		Args: exactArgs(1, "an inference job ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if stream && g.json() {
				return usagef("--stream prints text as it arrives; -o json prints one answer object: give one of them")
			}
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			job, err := resolveJob(ctx, c, args[0])
			if err != nil {
				return err
			}
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			// Through the service's endpoint on the servers: the token is
			// checked there, and any ready replica answers.
			ask := func() error {
				if !chat && !stream && model == "" {
					return inferGenerate(ctx, c, job.ID, req, g.json(), out, errOut)
				}
				path := "/v1/completions"
				if chat {
					path = "/v1/chat/completions"
				}
				body := serve.NewCompletionRequest(model, req.Prompt, chat, stream, req.Tokens, req.Temperature, int64(req.Seed))
				prefix := "" // a completion continues the prompt
				if !chat {
					prefix = req.Prompt
				}
				if stream {
					return inferStream(ctx, c, job.ID, path, body, prefix, out, errOut)
				}
				var resp serve.Completion
				if err := c.CallService(ctx, job.ID, path, body, &resp); err != nil {
					return err
				}
				if g.json() {
					return printJSON(out, resp)
				}
				fmt.Fprintf(out, "%s%s\n", prefix, resp.Text())
				if resp.Usage != nil {
					fmt.Fprintf(errOut, "(%d tokens from model %s, finish: %s)\n", resp.Usage.CompletionTokens, resp.Model, resp.FinishReason())
				}
				return nil
			}
			for {
				err := ask()
				var ae *client.APIError
				if err == nil || !errors.As(err, &ae) || ae.StatusCode != http.StatusServiceUnavailable {
					return err
				}
				// No replica ready yet (starting, or scaled to zero).
				select {
				case <-ctx.Done():
					return fmt.Errorf("no replica of %s answered within %s: %w", job.ID, timeout, err)
				case <-time.After(200 * time.Millisecond):
				}
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Prompt, "prompt", "", "text to continue (with --chat: the user's message)")
	f.IntVar(&req.Tokens, "tokens", 128, "tokens to generate")
	f.Float64Var(&req.Temperature, "temperature", 0.8, "sampling temperature (0: greedy)")
	f.Uint64Var(&req.Seed, "seed", 1, "sampling seed")
	f.StringVar(&model, "model", "", "the served model to ask: the base's name or an adapter's (default: the base)")
	f.BoolVar(&chat, "chat", false, "send the prompt as one user message to /v1/chat/completions and print the answer")
	f.BoolVar(&stream, "stream", false, "print the text as it is generated (Server-Sent Events)")
	f.DurationVar(&timeout, "timeout", 60*time.Second, "how long to wait for a ready replica")
	return cmd
}

// inferGenerate asks /v1/generate, the builtin server's own route.
func inferGenerate(ctx context.Context, c *client.Client, job string, req serve.GenerateRequest, asJSON bool, out, errOut io.Writer) error {
	var resp serve.GenerateResponse
	if err := c.CallService(ctx, job, "/v1/generate", req, &resp); err != nil {
		return err
	}
	if asJSON {
		return printJSON(out, resp)
	}
	fmt.Fprintf(out, "%s%s\n", req.Prompt, resp.Text)
	fmt.Fprintf(errOut, "(%d tokens in %.0f ms from %s, step %d)\n", resp.Tokens, resp.Millis, resp.Replica, resp.Step)
	return nil
}

// inferStream prints prefix, then a streamed answer's text as it arrives. An error
// event after some text ends the line and fails the command with the
// replica's message.
func inferStream(ctx context.Context, c *client.Client, job, path string, body serve.CompletionRequest, prefix string, out, errOut io.Writer) error {
	start := time.Now()
	rc, err := c.StreamService(ctx, job, path, body)
	if err != nil {
		return err
	}
	defer rc.Close()
	fmt.Fprint(out, prefix)
	var first time.Duration
	finish, u, err := serve.ReadStream(rc, func(s string) error {
		if first == 0 {
			first = time.Since(start)
		}
		_, err := io.WriteString(out, s)
		return err
	})
	fmt.Fprintln(out)
	if err != nil {
		var ae *serve.APIError
		if errors.As(err, &ae) {
			return fmt.Errorf("the replica stopped the answer: %s", ae.Message)
		}
		return err
	}
	tokens := 0
	if u != nil {
		tokens = u.CompletionTokens
	}
	fmt.Fprintf(errOut, "(%d tokens streamed in %.0f ms, first after %.0f ms, finish: %s)\n",
		tokens, float64(time.Since(start).Microseconds())/1000, float64(first.Microseconds())/1000, finish)
	return nil
}
