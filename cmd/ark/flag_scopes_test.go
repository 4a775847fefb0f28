package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestGlobalFlagScopes walks every command a user runs: each falls under
// an entry of flagScopes, and its help lists exactly the global flags it
// uses (--addr and the token and TLS flags for those that talk to a
// server, --log-level for those that run servers or agents, -o for those
// that print JSON).
func TestGlobalFlagScopes(t *testing.T) {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		if c.Runnable() && c.HasParent() {
			paths = append(paths, path)
			if _, ok := scopeOf(c); !ok {
				t.Errorf("ark %s is under no entry of flagScopes (flag_scopes.go)", commandKey(c))
			}
		}
		for _, sub := range c.Commands() {
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(newRoot(), nil)
	if len(paths) < 20 {
		t.Fatalf("walked %d commands, want the whole tree", len(paths))
	}
	for _, p := range paths {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append(append([]string(nil), p...), "--help"))
		if err := root.Execute(); err != nil {
			t.Errorf("ark %s --help: %v", strings.Join(p, " "), err)
			continue
		}
		c, _, _ := root.Find(p)
		scope, _ := scopeOf(c)
		help := out.String()
		for flag, s := range globalFlags {
			if got, want := strings.Contains(help, "--"+flag+" string"), scope&s != 0; got != want {
				t.Errorf("ark %s --help lists --%s: %v, want %v", strings.Join(p, " "), flag, got, want)
			}
		}
		if got, want := strings.Contains(help, "--output string"), offersOutput(c); got != want {
			t.Errorf("ark %s --help lists --output: %v, want %v", strings.Join(p, " "), got, want)
		}
	}
}

// TestGlobalFlagRefused: a global flag a command does not use is a usage
// error naming it (exit 2); before the command name, --addr still works
// for the commands that talk to a server.
func TestGlobalFlagRefused(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"version", "--addr", "http://x"}, exitUsage, "ark version does not take --addr (it talks to no server)"},
		{[]string{"dev", "--addr", "http://x"}, exitUsage, "ark dev does not take --addr"},
		{[]string{"--token", "t", "dev"}, exitUsage, "ark dev does not take --token"},
		{[]string{"tls", "ca", "create", "--out", "/nonexistent", "--log-level", "debug"}, exitUsage, "ark tls ca create does not take --log-level"},
		{[]string{"job", "list", "--log-level", "debug"}, exitUsage, "ark job list does not take --log-level"},
		{[]string{"--addr", "http://127.0.0.1:1", "job", "list"}, exitFailure, "no Ark server at http://127.0.0.1:1"},
	}
	for _, tt := range tests {
		code, out, _ := runArk(t, tt.args...)
		if code != tt.code || !strings.Contains(out, tt.want) {
			t.Errorf("ark %s: exit %d, output %q; want exit %d and %q", strings.Join(tt.args, " "), code, out, tt.code, tt.want)
		}
	}
}
