package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Faults are the probabilities (0 to 1) of each fault per request.
type Faults struct {
	// Error answers 500 InternalError without forwarding.
	Error float64
	// DropRequest reads half the request body, then closes the connection
	// without forwarding (requests with a body only).
	DropRequest float64
	// DropAfter forwards the request and closes the connection instead of
	// answering: the server did the work, the client sees a reset.
	DropAfter float64
	// DropResponse forwards an object GET and closes the connection
	// half-way through the response body.
	DropResponse float64
	// Stall delays the request by StallFor before anything else.
	Stall    float64
	StallFor time.Duration
}

// Stats counts what the proxy did.
type Stats struct {
	Requests, Errors, DropRequests, DropAfters, DropResponses, Stalls int
}

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	target *url.URL
	ln     net.Listener
	srv    *http.Server
	client *http.Client
	done   chan error

	mu     sync.Mutex
	faults Faults
	rng    *rand.Rand
	stats  Stats
}

// Start listens on a free loopback port and proxies to target
// (http://host:port).
func Start(target string, f Faults, seed uint64) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: target %q: want http://host:port", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{
		target: u,
		ln:     ln,
		faults: f,
		rng:    rand.New(rand.NewPCG(seed, seed+1)),
		client: &http.Client{
			Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		done: make(chan error, 1),
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { p.done <- p.srv.Serve(ln) }()
	return p, nil
}

// URL returns the proxy's address, http://127.0.0.1:PORT.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// SetFaults replaces the fault probabilities.
func (p *Proxy) SetFaults(f Faults) {
	p.mu.Lock()
	p.faults = f
	p.mu.Unlock()
}

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Close stops the proxy and waits for its serve loop to end.
func (p *Proxy) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := p.srv.Shutdown(ctx)
	if err != nil {
		p.srv.Close()
	}
	if serr := <-p.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	p.client.CloseIdleConnections()
	return err
}

type decision struct {
	stall                             time.Duration
	err, dropReq, dropAfter, dropResp bool
}

func (p *Proxy) decide(r *http.Request) decision {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.faults
	p.stats.Requests++
	var d decision
	if p.rng.Float64() < f.Stall {
		d.stall = f.StallFor
		p.stats.Stalls++
	}
	hasBody := r.ContentLength > 0 || r.ContentLength == -1
	objectGet := r.Method == http.MethodGet && r.URL.RawQuery == ""
	// Each fault owns a band of [0, 1); a fault that does not apply to
	// this request leaves its band fault-free.
	x := p.rng.Float64()
	band := func(prob float64) bool {
		in := x >= 0 && x < prob
		x -= prob
		return in
	}
	switch {
	case band(f.Error):
		d.err = true
		p.stats.Errors++
	case band(f.DropRequest):
		if hasBody {
			d.dropReq = true
			p.stats.DropRequests++
		}
	case band(f.DropAfter):
		d.dropAfter = true
		p.stats.DropAfters++
	case band(f.DropResponse):
		if objectGet {
			d.dropResp = true
			p.stats.DropResponses++
		}
	}
	return d
}

// hopHeaders are not forwarded (RFC 9110, section 7.6.1).
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := p.decide(r)
	if d.stall > 0 {
		select {
		case <-time.After(d.stall):
		case <-r.Context().Done():
			return
		}
	}
	if d.err {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>faultproxy: injected error</Message></Error>`)
		return
	}
	if d.dropReq {
		half := r.ContentLength / 2
		if half <= 0 {
			half = 1 << 10
		}
		io.CopyN(io.Discard, r.Body, half)
		hangUp(w)
		return
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.target.JoinPath(r.URL.Path).String(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.URL.RawQuery = r.URL.RawQuery
	out.URL.RawPath = r.URL.RawPath
	out.URL.Path = r.URL.Path
	out.Host = r.Host // the signature covers it
	out.ContentLength = r.ContentLength
	if r.ContentLength == 0 {
		out.Body = nil
	}
	out.Header = r.Header.Clone()
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	resp, err := p.client.Do(out)
	if err != nil {
		hangUp(w)
		return
	}
	defer resp.Body.Close()
	if d.dropAfter {
		io.Copy(io.Discard, resp.Body)
		hangUp(w)
		return
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	for _, h := range hopHeaders {
		w.Header().Del(h)
	}
	w.WriteHeader(resp.StatusCode)
	if d.dropResp && resp.ContentLength > 1 {
		io.CopyN(w, resp.Body, resp.ContentLength/2)
		http.NewResponseController(w).Flush()
		hangUp(w)
		return
	}
	io.Copy(w, resp.Body)
}

// hangUp closes the client connection without an HTTP answer.
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // net/http closes the connection
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0) // a reset, as a crashed peer would send
	}
	conn.Close()
}
