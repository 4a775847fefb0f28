package pki

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func mustCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCreateCertRoles: each role gets its DNS name and key usages, ECDSA
// P-256, a validity within the CA's, and a 0600 key.
func TestCreateCertRoles(t *testing.T) {
	dir := t.TempDir()
	caPath, err := CreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateCA(dir); !errors.Is(err, ErrExists) {
		t.Errorf("second CreateCA: %v, want ErrExists", err)
	}
	ca := mustCert(t, caPath)
	for _, tc := range []struct {
		role  Role
		dns   []string
		usage []x509.ExtKeyUsage
	}{
		{RoleServer, []string{ServerName, "localhost"}, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}},
		{RoleAgent, []string{AgentName}, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}},
		{RoleCLI, []string{CLIName}, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
	} {
		name := "n-" + tc.role.String()
		p, err := CreateCert(dir, tc.role, name, dir)
		if err != nil {
			t.Fatal(err)
		}
		c := mustCert(t, p)
		if !slices.Equal(c.DNSNames, tc.dns) || !slices.Equal(c.ExtKeyUsage, tc.usage) || c.PublicKeyAlgorithm != x509.ECDSA {
			t.Errorf("%v: dns %v usage %v alg %v", tc.role, c.DNSNames, c.ExtKeyUsage, c.PublicKeyAlgorithm)
		}
		if c.NotAfter.After(ca.NotAfter) || c.CheckSignatureFrom(ca) != nil {
			t.Errorf("%v: not within or not signed by the CA", tc.role)
		}
		fi, err := os.Stat(filepath.Join(dir, name+"-key.pem"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%v key: %v %v", tc.role, err, fi.Mode())
		}
		id, err := Load(Files{CA: caPath, Cert: p, Key: filepath.Join(dir, name+"-key.pem")})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []Role{RoleServer, RoleAgent, RoleCLI} {
			if id.HasRole(r) != (r == tc.role) {
				t.Errorf("%v certificate: HasRole(%v) = %v", tc.role, r, id.HasRole(r))
			}
		}
		_, herr := id.HTTPServer()
		_, rerr := id.Raft()
		if (herr == nil) != (tc.role == RoleServer) || (rerr == nil) != (tc.role == RoleServer) {
			t.Errorf("%v certificate: HTTPServer %v, Raft %v", tc.role, herr, rerr)
		}
	}
	if _, err := CreateCert(dir, RoleServer, "../escape", dir); err == nil {
		t.Error("a name with a path was accepted")
	}
	if _, err := CreateCert(dir, RoleAgent, "n-agent", dir); !errors.Is(err, ErrExists) {
		t.Errorf("re-issuing over an existing key: %v, want ErrExists", err)
	}
}

// TestLoadRefuses: wrong combinations, a readable key and a certificate of
// another CA are refused when the process starts, not at each handshake.
func TestLoadRefuses(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	caPath, _ := CreateCA(dir)
	otherCA, _ := CreateCA(other)
	cert, _ := CreateCert(dir, RoleAgent, "a", dir)
	key := filepath.Join(dir, "a-key.pem")
	if _, err := Load(Files{CA: caPath, Cert: cert, Key: key}); err != nil {
		t.Fatalf("valid files: %v", err)
	}
	for _, tc := range []struct {
		name  string
		f     Files
		setup func()
		want  string
	}{
		{"cert without CA", Files{Cert: cert, Key: key}, nil, "--tls-ca"},
		{"cert without key", Files{CA: caPath, Cert: cert}, nil, "both or neither"},
		{"other CA", Files{CA: otherCA, Cert: cert, Key: key}, nil, "not signed by the CA"},
		{"readable key", Files{CA: caPath, Cert: cert, Key: key}, func() { os.Chmod(key, 0o644) }, "chmod 600"},
		{"CA file without PEM", Files{CA: key + ".missing"}, nil, "--tls-ca"},
	} {
		if tc.setup != nil {
			tc.setup()
		}
		_, err := Load(tc.f)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	if err := (Files{CA: caPath}).Check(true); err == nil {
		t.Error("a server or agent without a certificate passed Check")
	}
	if err := (Files{CA: caPath}).Check(false); err != nil {
		t.Errorf("a CLI user with only the CA: %v", err)
	}
}
