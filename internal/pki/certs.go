package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Role is what a certificate lets its holder be.
type Role int

// The roles. Their DNS names are what peers verify.
const (
	RoleServer Role = iota + 1
	RoleAgent
	RoleCLI
)

// DNS names that mark a certificate's role.
const (
	ServerName = "server.ark"
	AgentName  = "agent.ark"
	CLIName    = "cli.ark"
)

// File names under a CA directory.
const (
	CAFile    = "ark-ca.pem"
	CAKeyFile = "ark-ca-key.pem"
)

// Validity of what ark tls creates: the CA outlives the certificates it
// signs, and a leaf lasts a year, as Nomad's defaults (CA 5 years, leaves
// 1 year).
const (
	CAValidity   = 5 * 365 * 24 * time.Hour
	CertValidity = 365 * 24 * time.Hour
)

// ErrExists is returned instead of overwriting a key already on disk.
var ErrExists = errors.New("file exists")

func (r Role) String() string {
	switch r {
	case RoleServer:
		return "server"
	case RoleAgent:
		return "agent"
	case RoleCLI:
		return "cli"
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// dnsName is the role's DNS SAN.
func (r Role) dnsName() string {
	switch r {
	case RoleServer:
		return ServerName
	case RoleAgent:
		return AgentName
	case RoleCLI:
		return CLIName
	}
	return ""
}

// CreateCA writes a new self-signed CA (ECDSA P-256) to dir/ark-ca.pem and
// its key to dir/ark-ca-key.pem (0600). It refuses to overwrite either:
// replacing a CA silently would lock every node out.
func CreateCA(dir string) (certPath string, err error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	if err := refuseExisting(certPath, keyPath); err != nil {
		return "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Ark CA " + serial.Text(16)[:8], Organization: []string{"Ark"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(CAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", fmt.Errorf("sign CA: %w", err)
	}
	if err := writePair(dir, certPath, keyPath, der, key); err != nil {
		return "", err
	}
	return certPath, nil
}

// CreateCert signs a certificate for name in role with the CA in caDir,
// and writes outDir/NAME.pem and outDir/NAME-key.pem (0600).
func CreateCert(caDir string, role Role, name, outDir string) (certPath string, err error) {
	if role.dnsName() == "" {
		return "", fmt.Errorf("role: want server, agent or cli, got %v", role)
	}
	if name == "" || filepath.Base(name) != name || name == "." || name == ".." {
		return "", fmt.Errorf("name: want a plain file name, got %q", name)
	}
	ca, caKey, err := loadCA(caDir)
	if err != nil {
		return "", err
	}
	certPath, keyPath := filepath.Join(outDir, name+".pem"), filepath.Join(outDir, name+"-key.pem")
	if err := refuseExisting(certPath, keyPath); err != nil {
		return "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return "", err
	}
	now := time.Now()
	notAfter := now.Add(CertValidity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"Ark"}, OrganizationalUnit: []string{role.String()}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		DNSNames:     []string{role.dnsName()},
		// CLI users only ever dial; servers also dial each other (Raft,
		// forwarding), and agents serve the servers' log requests, so
		// those are servers too.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if role == RoleAgent {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if role == RoleServer {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		// Reached as localhost by a CLI on the same host; the role name
		// is what peers verify.
		tmpl.DNSNames = append(tmpl.DNSNames, "localhost")
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", fmt.Errorf("sign certificate for %s: %w", name, err)
	}
	if err := writePair(outDir, certPath, keyPath, der, key); err != nil {
		return "", err
	}
	return certPath, nil
}

func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, nil, fmt.Errorf("read CA (create one with ark tls ca create): %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("read CA key: %w", err)
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s: no PEM certificate", filepath.Join(dir, CAFile))
	}
	ca, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, fmt.Errorf("%s: no PEM key", filepath.Join(dir, CAKeyFile))
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA key: %w", err)
	}
	if !ca.IsCA {
		return nil, nil, fmt.Errorf("%s is not a CA certificate", filepath.Join(dir, CAFile))
	}
	return ca, key, nil
}

func writePair(dir, certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	// The key first, with O_EXCL: never readable by others, never
	// clobbering one another run just wrote.
	if err := writeExcl(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	if err := writeExcl(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		os.Remove(keyPath)
		return err
	}
	return nil
}

func writeExcl(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s: %w (remove it first to replace it)", path, ErrExists)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func refuseExisting(paths ...string) error {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s: %w (remove it first to replace it)", p, ErrExists)
		}
	}
	return nil
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}
