package server

import (
	"crypto/sha256"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadTokens checks the token file reader: a refusal names the file
// (and the line when one is at fault); an accepted file gives the servers a
// token that really has the management role, and a namespace token names
// its namespace.
func FuzzLoadTokens(f *testing.F) {
	for _, s := range []string{
		"# ops\nmgmt-0123456789abcdef management\nagent-0123456789abcd agent\n\nns-research-012345678 namespace:research\n",
		"mgmt-0123456789abcdef management\nmgmt-0123456789abcdef namespace:x\n", // the same token twice
		"short management\n",
		"mgmt-0123456789abcdef admin\n",
		"agent-0123456789abcd agent\n",
		"mgmt-0123456789abcdef namespace:\n",
		"mgmt-0123456789abcdef management extra\n",
		"\xef\xbb\xbfmgmt-0123456789abcdef\tmanagement\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		path := filepath.Join(t.TempDir(), "tokens")
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		acl, err := LoadTokens(path)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "token file "+path) {
				t.Fatalf("LoadTokens(%q): error %q does not name the file", data, err)
			}
			return
		}
		if p := acl.tokens[sha256.Sum256([]byte(acl.serverToken))]; p.role != roleManagement {
			t.Fatalf("LoadTokens(%q): the servers' token %q has role %v, not management", data, acl.serverToken, p.role)
		}
		for _, p := range acl.tokens {
			if p.role == roleNamespace && p.namespace == "" || p.role < roleNamespace || p.role > roleManagement {
				t.Fatalf("LoadTokens(%q): principal %+v", data, p)
			}
		}
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer "+acl.serverToken)
		if p, err := acl.identify(req); err != nil || !p.allows(mgmtAccess) {
			t.Fatalf("LoadTokens(%q): the servers' own token is refused: %v", data, err)
		}
	})
}

// FuzzLoadQueues checks the queues file reader: a refusal names the file;
// every queue it accepts has a name, a quota >= 0 and a finite weight > 0
// (the fair-share order divides by it), under its own name.
func FuzzLoadQueues(f *testing.F) {
	for _, s := range []string{
		"- {name: research, quotaGPUs: 64, weight: 2, borrow: true}\n- {name: prod, quotaGPUs: 128, weight: 1}\n",
		"- {name: a, weight: .nan}\n",
		"- {name: a, weight: .inf}\n",
		"- {name: a, weight: -.inf}\n",
		"- {name: a, quotaGPUs: -1}\n",
		"- {name: a}\n- {name: a}\n",
		"- {name: a, quota: 2}\n",
		"null\n",
		"[{\"name\": \"json\", \"weight\": 1e308}]",
		"- &x {name: a}\n- *x\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		path := filepath.Join(t.TempDir(), "queues.yaml")
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		queues, err := LoadQueues(path)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "queues file") || !strings.Contains(err.Error(), path) && !strings.Contains(err.Error(), "queues file: ") {
				t.Fatalf("LoadQueues(%q): error %q does not name the file", data, err)
			}
			return
		}
		for name, q := range queues {
			if name == "" || q.Name != name || q.QuotaGPUs < 0 || !(q.Weight > 0) || math.IsInf(q.Weight, 0) {
				t.Fatalf("LoadQueues(%q) accepted queue %q: %+v", data, name, q)
			}
		}
	})
}
