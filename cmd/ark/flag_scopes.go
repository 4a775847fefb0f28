package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

// A flagScope is the set of the root's global flags a command uses. The
// flags stay on the root (so `ark --addr URL job list` works), but a
// command's help shows only those it uses, and giving it another is a
// usage error that says so: --addr means nothing to `ark version`.
type flagScope uint8

const (
	// scopeClient: the command talks to a server's API.
	scopeClient flagScope = 1 << iota
	// scopeToken: the command presents a token (the API's, or an agent's
	// to register).
	scopeToken
	// scopeTLS: the command speaks TLS to the cluster.
	scopeTLS
	// scopeLog: the command runs servers or agents, which log.
	scopeLog
)

// api is what every command that talks to a server uses.
const scopeAPI = scopeClient | scopeToken | scopeTLS

// flagScopes gives each command's scope by its path without "ark "; a
// command takes its nearest listed ancestor's (every subcommand of job
// talks to a server). TestGlobalFlagScopes walks the tree: every command
// a user runs must fall under an entry.
var flagScopes = map[string]flagScope{
	"server":                scopeLog | scopeTLS,
	"server join":           scopeAPI,
	"agent":                 scopeLog | scopeTLS | scopeToken,
	"dev":                   scopeLog | scopeTLS,
	"job":                   scopeAPI,
	"node":                  scopeAPI,
	"queue":                 scopeAPI,
	"acl":                   scopeAPI,
	"operator":              scopeAPI,
	"operator raft recover": scopeLog, // offline, on a stopped server's data dir
	"model":                 scopeAPI,
	"ckpt":                  scopeAPI, // finds a job's store (and keys) through the API
	"infer":                 scopeAPI,
	"health":                scopeAPI,
	"version":               0,
	"bench":                 0,
	"task":                  0, // tasks report to their agent, not to a server
	"example":               0,
	"tls":                   0,
}

// globalFlags are the root's flags, by the scope that uses them. --output
// is scoped by output_modes.go (jsonCommands), not here.
var globalFlags = map[string]flagScope{
	"addr":      scopeClient,
	"token":     scopeToken,
	"tls-ca":    scopeTLS,
	"tls-cert":  scopeTLS,
	"tls-key":   scopeTLS,
	"log-level": scopeLog,
}

// scopeOf is a command's scope, and whether any entry covers it.
func scopeOf(c *cobra.Command) (flagScope, bool) {
	for k := commandKey(c); k != ""; {
		if s, ok := flagScopes[k]; ok {
			return s, true
		}
		i := strings.LastIndexByte(k, ' ')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0, false
}

// offersOutput reports whether a command prints what -o chooses.
func offersOutput(c *cobra.Command) bool { return jsonCommands[commandKey(c)] }

// unusedGlobalFlag returns the first global flag given on the command
// line that c does not use, as a usage error naming it.
func unusedGlobalFlag(c *cobra.Command) error {
	scope, ok := scopeOf(c)
	if !ok || !c.HasParent() {
		return nil // help, completion: nothing to check
	}
	names := make([]string, 0, len(globalFlags))
	for n := range globalFlags {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := c.Root().PersistentFlags().Lookup(n)
		if f == nil || !f.Changed || scope&globalFlags[n] != 0 {
			continue
		}
		return usagef("ark %s does not take --%s (%s)", commandKey(c), n, whyNot(globalFlags[n]))
	}
	return nil
}

func whyNot(s flagScope) string {
	switch s {
	case scopeClient:
		return "it talks to no server"
	case scopeToken:
		return "it presents no token"
	case scopeTLS:
		return "it opens no connection to the cluster"
	case scopeLog:
		return "only servers and agents log; their commands take it"
	}
	return fmt.Sprintf("scope %d", s)
}

// scopeHelp makes every command's help and usage list only the global
// flags it uses.
func scopeHelp(root *cobra.Command) {
	help, usage := root.HelpFunc(), root.UsageFunc()
	root.SetHelpFunc(func(c *cobra.Command, args []string) {
		restore := hideUnused(c)
		defer restore()
		help(c, args)
	})
	root.SetUsageFunc(func(c *cobra.Command) error {
		restore := hideUnused(c)
		defer restore()
		return usage(c)
	})
}

// hideUnused hides, for one rendering of c's help, the global flags c
// does not use; restore shows them again.
func hideUnused(c *cobra.Command) (restore func()) {
	if !c.HasParent() {
		return func() {}
	}
	scope, _ := scopeOf(c)
	pf := c.Root().PersistentFlags()
	var hidden []string
	for n, s := range globalFlags {
		if f := pf.Lookup(n); f != nil && !f.Hidden && scope&s == 0 {
			f.Hidden = true
			hidden = append(hidden, n)
		}
	}
	if f := pf.Lookup("output"); f != nil && !f.Hidden && !offersOutput(c) {
		f.Hidden = true
		hidden = append(hidden, "output")
	}
	return func() {
		for _, n := range hidden {
			pf.Lookup(n).Hidden = false
		}
	}
}
