package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap/zaptest"

	"github.com/ark-sched/ark/internal/pki"
)

// testPKI is a CA with certificates issued by it, and a second, unrelated
// CA with a server certificate (an attacker's own).
type testPKI struct {
	caFile                        string
	servers                       []*pki.Identity
	agent, foreignServer          *pki.Identity
	agentFiles, foreignServerFile pki.Files
}

func newTestPKI(t *testing.T, servers int) *testPKI {
	t.Helper()
	dir, other := t.TempDir(), t.TempDir()
	mustCA := func(d string) string {
		p, err := pki.CreateCA(d)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	issue := func(caDir, caFile string, role pki.Role, name string) (*pki.Identity, pki.Files) {
		cert, err := pki.CreateCert(caDir, role, name, caDir)
		if err != nil {
			t.Fatal(err)
		}
		f := pki.Files{CA: caFile, Cert: cert, Key: filepath.Join(caDir, name+"-key.pem")}
		id, err := pki.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		return id, f
	}
	p := &testPKI{caFile: mustCA(dir)}
	for i := 1; i <= servers; i++ {
		id, _ := issue(dir, p.caFile, pki.RoleServer, fmt.Sprintf("s%d", i))
		p.servers = append(p.servers, id)
	}
	p.agent, p.agentFiles = issue(dir, p.caFile, pki.RoleAgent, "node-1")
	p.foreignServer, p.foreignServerFile = issue(other, mustCA(other), pki.RoleServer, "evil")
	return p
}

func raftTLS(t *testing.T, id *pki.Identity) *tls.Config {
	t.Helper()
	c, err := id.Raft()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// openTLSCluster starts n servers over the TLS stream layer on loopback
// and waits for a leader that has committed its first entries.
func openTLSCluster(t *testing.T, p *testPKI, n int) ([]*Node, []*countFSM) {
	t.Helper()
	var nodes []*Node
	var fsms []*countFSM
	var peers []Peer
	for i := 0; i < n; i++ {
		fsm := &countFSM{}
		node, err := Open(Config{
			Name: fmt.Sprintf("s%d", i+1), DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0",
			HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond, LeaderLeaseTimeout: 100 * time.Millisecond,
			TLS: raftTLS(t, p.servers[i]), Logger: zaptest.NewLogger(t),
		}, fsm)
		if err != nil {
			t.Fatalf("open s%d: %v", i+1, err)
		}
		t.Cleanup(func() { node.Close() })
		nodes, fsms = append(nodes, node), append(fsms, fsm)
		peers = append(peers, Peer{ID: node.Name(), Address: node.Addr()})
	}
	for _, node := range nodes {
		if err := node.BootstrapCluster(peers); err != nil {
			t.Fatal(err)
		}
	}
	return nodes, fsms
}

func leaderOf(t *testing.T, nodes []*Node) *Node {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			if n.IsLeader() {
				return n
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no leader elected")
	return nil
}

// TestTLSClusterReplicates: three servers elect a leader and replicate over
// mutual TLS.
func TestTLSClusterReplicates(t *testing.T) {
	p := newTestPKI(t, 3)
	nodes, fsms := openTLSCluster(t, p, 3)
	leader := leaderOf(t, nodes)
	for i := 0; i < 5; i++ {
		if _, _, err := leader.Apply(context.Background(), []byte("cmd")); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for i, f := range fsms {
		for f.count() != 5 {
			if time.Now().After(deadline) {
				t.Fatalf("s%d applied %d of 5 entries over TLS", i+1, f.count())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// attackStream is a raft.StreamLayer an attacker controls: it dials with
// whatever it likes (nothing, or a certificate of its own).
type attackStream struct {
	net.Listener
	dial func(addr string, timeout time.Duration) (net.Conn, error)
}

func (s *attackStream) Dial(a raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.dial(string(a), timeout)
}

// inject sends one AppendEntries with a higher term that appends and
// commits "evil" right after the target's last entry: what an attacker
// who reaches an unauthenticated Raft port does.
func inject(t *testing.T, target *Node, trans *raft.NetworkTransport) error {
	t.Helper()
	st := target.Stats()
	term, _ := strconv.ParseUint(st["term"], 10, 64)
	last, _ := strconv.ParseUint(st["last_log_index"], 10, 64)
	lastTerm, _ := strconv.ParseUint(st["last_log_term"], 10, 64)
	req := &raft.AppendEntriesRequest{
		RPCHeader:    raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("evil"), Addr: []byte(trans.LocalAddr())},
		Term:         term + 10,
		PrevLogEntry: last, PrevLogTerm: lastTerm,
		Entries:           []*raft.Log{{Index: last + 1, Term: term + 10, Type: raft.LogCommand, Data: []byte("evil")}},
		LeaderCommitIndex: last + 1,
	}
	var resp raft.AppendEntriesResponse
	if err := trans.AppendEntries(raft.ServerID(target.Name()), raft.ServerAddress(target.Addr()), req, &resp); err != nil {
		return err
	}
	if !resp.Success {
		return errors.New("append refused by raft")
	}
	return nil
}

func (f *countFSM) has(s string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.applied, s)
}

// TestPlainRaftAcceptsForgedAppend reproduces the attack on the plain TCP
// transport: one forged AppendEntries commits a command. It is why a
// plain Raft port must stay on loopback (checkRaftBind).
func TestPlainRaftAcceptsForgedAppend(t *testing.T) {
	fsm := &countFSM{}
	n := open(t, t.TempDir(), fsm)
	defer n.Close()
	// A settled log (the new leader's first entries applied), so that the
	// forged entry goes right after the last one.
	if _, _, err := n.Apply(context.Background(), []byte("cmd")); err != nil {
		t.Fatal(err)
	}
	if err := n.Barrier(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	trans, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 2*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer trans.Close()
	if err := inject(t, n, trans); err != nil {
		t.Fatalf("forged append on a plain transport: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !fsm.has("evil") {
		if time.Now().After(deadline) {
			t.Fatal("forged entry was not applied")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTLSRaftRefusesOutsiders: over the TLS stream layer, a client without
// a certificate, with a server certificate from another CA, or with an
// agent certificate of this CA can neither complete a connection to the
// Raft port nor deliver an AppendEntries; the cluster's term and log are
// unchanged and nothing is applied.
func TestTLSRaftRefusesOutsiders(t *testing.T) {
	p := newTestPKI(t, 3)
	nodes, fsms := openTLSCluster(t, p, 3)
	leader := leaderOf(t, nodes)
	if _, _, err := leader.Apply(context.Background(), []byte("cmd")); err != nil {
		t.Fatal(err)
	}
	if err := leader.Barrier(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	// A follower: the target an attacker would pick to avoid a leader's
	// own heartbeats correcting it at once.
	target := nodes[0]
	if target == leader {
		target = nodes[1]
	}
	// Let the follower catch up with the leader's last entry (the
	// barrier's), so that only the attack could change its log.
	waitLast := time.Now().Add(5 * time.Second)
	for target.LastIndex() != leader.LastIndex() && time.Now().Before(waitLast) {
		time.Sleep(10 * time.Millisecond)
	}
	before := target.Stats()

	// The attacker does not verify the server (it has no reason to), and
	// presents its certificate whatever CAs the server asks for (Go's
	// client would otherwise keep back one the server does not trust);
	// what matters is whether the server accepts it.
	attackerTLS := func(f pki.Files) *tls.Config {
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Config{
			InsecureSkipVerify: true,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return &cert, nil
			},
		}
	}
	cases := []struct {
		name string
		tls  *tls.Config // nil: plain TCP, no certificate at all
	}{
		{"no certificate (plain tcp)", nil},
		{"no certificate (tls)", &tls.Config{InsecureSkipVerify: true}},
		{"server certificate of another CA", attackerTLS(p.foreignServerFile)},
		{"agent certificate of this CA", attackerTLS(p.agentFiles)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dial := func(addr string, timeout time.Duration) (net.Conn, error) {
				if tc.tls == nil {
					return net.DialTimeout("tcp", addr, timeout)
				}
				return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", addr, tc.tls)
			}
			// The connection: refused during the handshake. Under TLS 1.3
			// the client's side of the handshake ends before the server has
			// checked the client's certificate, so the refusal (an alert)
			// arrives on the first read.
			if tc.tls != nil {
				c, err := dial(target.Addr(), 2*time.Second)
				if err == nil {
					_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
					_, err = c.Read(make([]byte, 1))
					c.Close()
				}
				if err == nil || !isHandshakeRefusal(err) {
					t.Fatalf("connection with %s: %v, want a handshake refusal", tc.name, err)
				}
				t.Logf("refused: %v", err)
			}
			// The message: never delivered.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			trans := raft.NewNetworkTransport(&attackStream{Listener: ln, dial: dial}, 1, 2*time.Second, io.Discard)
			defer trans.Close()
			if err := inject(t, target, trans); err == nil {
				t.Fatal("forged AppendEntries was delivered")
			} else {
				t.Logf("append refused: %v", err)
			}
		})
	}
	// The forged term (+10) was never adopted. An honest election under
	// load may move the term by one or two; only then may the log move.
	after := target.Stats()
	u := func(m map[string]string, k string) uint64 { v, _ := strconv.ParseUint(m[k], 10, 64); return v }
	if u(after, "term") >= u(before, "term")+10 || u(after, "last_log_term") >= u(before, "term")+10 {
		t.Errorf("the forged term was adopted: before %v, after %v", before, after)
	}
	if u(after, "term") == u(before, "term") {
		for _, k := range []string{"last_log_index", "last_log_term"} {
			if before[k] != after[k] {
				t.Errorf("%s changed from %s to %s", k, before[k], after[k])
			}
		}
	}
	for i, f := range fsms {
		if f.has("evil") {
			t.Errorf("s%d applied the forged entry", i+1)
		}
	}
}

// isHandshakeRefusal reports whether err is the server refusing the TLS
// handshake (an alert about the certificate, or the connection dropped
// during it).
func isHandshakeRefusal(err error) bool {
	s := err.Error()
	return strings.Contains(s, "tls:") || errors.Is(err, io.EOF) || strings.Contains(s, "connection reset")
}

// TestCheckRaftBind: without TLS a server binds Raft on loopback only,
// unless the operator says the network is private.
func TestCheckRaftBind(t *testing.T) {
	for _, tc := range []struct {
		addr           string
		withTLS, insec bool
		wantErr        bool
	}{
		{"127.0.0.1:4681", false, false, false},
		{"127.0.0.5:4681", false, false, false},
		{"[::1]:4681", false, false, false},
		{"localhost:4681", false, false, false},
		{"0.0.0.0:4681", false, false, true},
		{":4681", false, false, true},
		{"10.0.0.7:4681", false, false, true},
		{"[::]:4681", false, false, true},
		{"10.0.0.7:4681", true, false, false},
		{"0.0.0.0:4681", false, true, false},
		{"10.0.0.7:4681", false, true, false},
	} {
		addr, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		err = checkRaftBind(addr, tc.withTLS, tc.insec)
		if (err != nil) != tc.wantErr {
			t.Errorf("checkRaftBind(%s, tls=%v, insecure=%v) = %v, want error %v", tc.addr, tc.withTLS, tc.insec, err, tc.wantErr)
		}
		if err != nil && (!errors.Is(err, ErrInsecureRaft) || !strings.Contains(err.Error(), "--insecure-raft") || !strings.Contains(err.Error(), "--tls-cert")) {
			t.Errorf("error does not say why and what to do: %v", err)
		}
	}
}

// TestOpenRefusesPlainRaftOnNetwork: Open itself applies the check.
func TestOpenRefusesPlainRaftOnNetwork(t *testing.T) {
	_, err := Open(Config{Name: "s1", DataDir: t.TempDir(), RaftAddr: "0.0.0.0:0", Bootstrap: true, Logger: zaptest.NewLogger(t)}, &countFSM{})
	if !errors.Is(err, ErrInsecureRaft) {
		t.Fatalf("open on 0.0.0.0 without TLS: %v, want ErrInsecureRaft", err)
	}
}
