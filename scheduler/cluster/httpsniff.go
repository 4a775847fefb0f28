package cluster

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// A user who points the CLI (or curl) at the Raft port instead of the API
// used to get a hang and then "EOF", while Raft logged "unknown rpc type
// 71" ('G' of GET) for every try. Raft's first byte on a connection is a
// small RPC type, never an ASCII letter, so a connection that starts with
// one is an HTTP request: it is answered with a 400 that names the API
// address, and logged once per remote a minute.

// sniffTimeout bounds reading the stray HTTP request before answering it.
const sniffTimeout = 2 * time.Second

// httpLogEvery is how often one remote's HTTP requests are logged.
const httpLogEvery = time.Minute

// httpSniffer answers HTTP requests that reach the Raft port.
type httpSniffer struct {
	// apiAddr is the server's HTTP API address, for the answer; may be
	// empty.
	apiAddr string
	log     *zap.Logger

	mu     sync.Mutex
	logged map[string]time.Time // remote host -> last logged
}

func newHTTPSniffer(apiAddr string, log *zap.Logger) *httpSniffer {
	return &httpSniffer{apiAddr: apiAddr, log: log, logged: map[string]time.Time{}}
}

// message is the answer's text.
func (s *httpSniffer) message() string {
	if s.apiAddr == "" {
		return "this is the Raft port of an Ark server, not its API; the API is on the server's --http address"
	}
	api := s.apiAddr
	if !strings.Contains(api, "://") {
		api = "http://" + api
	}
	return fmt.Sprintf("this is the Raft port of an Ark server, not its API; the API is on %s (--addr %s)", api, api)
}

// wrap returns c so that its first read checks for HTTP.
func (s *httpSniffer) wrap(c net.Conn) net.Conn {
	return &sniffConn{Conn: c, br: bufio.NewReader(c), s: s}
}

// sniffConn is an accepted Raft connection whose first byte is checked
// before Raft (or TLS) sees it.
type sniffConn struct {
	net.Conn
	br   *bufio.Reader
	s    *httpSniffer
	once sync.Once
	// http is set when the connection carried HTTP and was answered: Raft
	// (or the TLS handshake) then reads a bare io.EOF, which Raft's
	// transport drops without logging (it compares with ==).
	http atomic.Bool
}

func (c *sniffConn) Read(b []byte) (int, error) {
	c.once.Do(func() {
		first, err := c.br.Peek(1)
		if err != nil || !isHTTPStart(first[0]) {
			return // Raft sees the error, or its own bytes
		}
		c.http.Store(true)
		c.s.answer(c.Conn, c.br)
	})
	if c.http.Load() {
		return 0, io.EOF
	}
	return c.br.Read(b)
}

// isHTTPStart reports whether b can begin an HTTP request line (every
// method is upper-case letters) and no Raft message (whose first byte is
// an RPC type below 'A').
func isHTTPStart(b byte) bool { return b >= 'A' && b <= 'Z' }

// answer reads the request, so that closing does not reset the connection
// before the client has read the answer, writes a 400 with the message
// (JSON, the API's error shape, so Ark's client prints it), closes, and
// logs once per remote a minute.
func (s *httpSniffer) answer(c net.Conn, br *bufio.Reader) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(sniffTimeout))
	if req, err := http.ReadRequest(br); err == nil {
		_, _ = io.CopyN(io.Discard, req.Body, 1<<20)
		_ = req.Body.Close()
	}
	msg := s.message()
	body := fmt.Sprintf("{\"error\":%q}\n", msg)
	_, _ = fmt.Fprintf(c, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	if s.shouldLog(c.RemoteAddr()) {
		s.log.Warn("an HTTP request reached the raft port; answered with where the API is",
			zap.Stringer("remote", c.RemoteAddr()), zap.String("api", s.apiAddr))
	}
}

func (s *httpSniffer) shouldLog(remote net.Addr) bool {
	host := remote.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if last, ok := s.logged[host]; ok && now.Sub(last) < httpLogEvery {
		return false
	}
	if len(s.logged) > 1024 { // bounded: forget everyone rather than grow
		clear(s.logged)
	}
	s.logged[host] = now
	return true
}

// tcpStream is a plain-TCP raft.StreamLayer (hashicorp/raft's own, which
// cannot be wrapped) whose accepted connections go through the sniffer.
type tcpStream struct {
	ln        net.Listener
	advertise net.Addr
	sniff     *httpSniffer
}

// newTCPStream listens on bind; advertise, when non-nil, is the address
// peers dial instead of the bound one.
func newTCPStream(bind string, advertise net.Addr, sniff *httpSniffer) (*tcpStream, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	if err := advertisable(advertise); err != nil {
		ln.Close()
		return nil, err
	}
	return &tcpStream{ln: ln, advertise: advertise, sniff: sniff}, nil
}

func (s *tcpStream) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	return s.sniff.wrap(c), nil
}

func (s *tcpStream) Close() error   { return s.ln.Close() }
func (s *tcpStream) Addr() net.Addr { return s.advertise }

func (s *tcpStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(address), timeout)
}

// answeredHTTP reports whether c is a connection the sniffer answered (and
// logged) as HTTP.
func answeredHTTP(c net.Conn) bool {
	sc, ok := c.(*sniffConn)
	return ok && sc.http.Load()
}
