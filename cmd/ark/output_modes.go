package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// jsonCommands print what a script reads as JSON with -o json (by command
// path without "ark "). TestEveryCommandDeclaresOutput walks the tree:
// every command a user runs is here or in textOnly.
var jsonCommands = setOf(
	"job submit", "job validate", "job status", "job list", "job cancel", "job update", "job promote", "job history", "job revert",
	"job adapter add", "job adapter rm", "job adapter list",
	"node list", "node status", "node drain", "node eligibility",
	"operator raft list-peers", "operator raft remove-peer", "operator raft recover", "operator snapshot save", "operator snapshot restore",
	"operator namespace-key delete", "operator audit verify",
	"acl bootstrap", "acl policy apply", "acl policy list", "acl policy show", "acl policy delete",
	"acl token create", "acl token list", "acl token delete",
	"queue list", "infer", "version",
	"ckpt list", "ckpt show", "ckpt verify", "ckpt cp", "ckpt rm",
	"bench allreduce", "bench ckpt", "bench cluster", "bench kernels", "bench placement", "bench raft", "bench serve", "bench train",
	"task eval",
	"model list", "model show", "model versions", "model lineage", "model register", "model rm", "model compare", "model record-eval", "model import",
)

// textOnly are the commands that offer no JSON, each with why: -o json
// there is a usage error that says so, not text a script would misread.
var textOnly = map[string]string{
	"server":               "a long-running process; it logs, and the API serves JSON",
	"server join":          "prints one confirmation line; ark operator raft list-peers -o json shows the peers",
	"agent":                "a long-running process; it logs",
	"dev":                  "a long-running process; ark node list -o json reads the cluster it starts",
	"health":               "its answer is the exit status, for container health checks",
	"job logs":             "prints the task's own output as it is",
	"example rendezvous":   "a task started by jobs; its output is the example's",
	"example http-service": "a task started by jobs; it serves HTTP and logs",
	"task train":           "a task the agent runs; it reports progress to the agent, not to a script",
	"task generate":        "a task that prints the generated text",
	"task report":          "a task the agent runs; it reports to the agent",
	"task serve":           "a long-running inference server; its API speaks JSON",
	"tls ca create":        "writes files; the files are its output",
	"tls cert create":      "writes files; the files are its output",
}

func setOf(paths ...string) map[string]bool {
	m := map[string]bool{}
	for _, p := range paths {
		m[p] = true
	}
	return m
}

// commandKey is a command's path without the root's name.
func commandKey(c *cobra.Command) string {
	return strings.TrimPrefix(strings.TrimPrefix(c.CommandPath(), c.Root().Name()), " ")
}

// checkOutputMode refuses -o json on a command that has no JSON output.
func checkOutputMode(g *globals, c *cobra.Command) error {
	if !g.json() {
		return nil
	}
	if why, ok := textOnly[commandKey(c)]; ok {
		return usagef("ark %s has no JSON output (%s)", commandKey(c), why)
	}
	return nil
}
