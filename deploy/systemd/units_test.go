// Package systemd holds the units that run Ark under systemd; its test
// checks their hardening and, where systemd-analyze is installed, that
// systemd reads every key.
package systemd

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// service reads the [Service] section of a unit: key to values.
func service(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, _ := strings.Cut(line, "=")
			out[k] = append(out[k], v)
		}
	}
	return out
}

// TestHardening: the server runs with no capabilities in a read-only
// system; the agent keeps what running and sandboxing tasks needs, and
// the options it leaves out (which its tasks would inherit) stay out.
func TestHardening(t *testing.T) {
	for _, tc := range []struct {
		unit    string
		want    map[string]string
		without []string
	}{
		{"ark-server.service", map[string]string{
			"User": "ark", "NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "ProtectSystem": "strict",
			"ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectControlGroups": "yes",
			"RestrictNamespaces": "yes", "MemoryDenyWriteExecute": "yes", "SystemCallFilter": "@system-service",
		}, nil},
		{"ark-agent.service", map[string]string{
			"NoNewPrivileges": "yes", "ProtectSystem": "full", "ProtectKernelModules": "yes", "RestrictSUIDSGID": "yes",
		}, []string{"ProtectControlGroups", "ProtectKernelTunables", "RestrictNamespaces", "SystemCallFilter",
			"PrivateDevices", "ProtectHome", "RestrictAddressFamilies", "ProtectHostname"}},
	} {
		got := service(t, tc.unit)
		for k, v := range tc.want {
			if vs := got[k]; len(vs) != 1 || vs[0] != v {
				t.Errorf("%s: %s=%q, want %q", tc.unit, k, vs, v)
			}
		}
		for _, k := range tc.without {
			if _, ok := got[k]; ok {
				t.Errorf("%s sets %s: its tasks would inherit it (see the unit's comment)", tc.unit, k)
			}
		}
	}
}

// TestSystemdReadsEveryKey: systemd-analyze names no unknown key or bad
// value (it also says the binary is not installed here, which is fine).
func TestSystemdReadsEveryKey(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	for _, unit := range []string{"ark-server.service", "ark-agent.service"} {
		out, _ := exec.Command("systemd-analyze", "verify", unit).CombinedOutput()
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line == "" || strings.Contains(line, "/usr/local/bin/ark is not executable") {
				continue
			}
			t.Errorf("%s: %s", unit, line)
		}
	}
}
