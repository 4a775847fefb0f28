// Package netlimit caps the connections one client address may hold open
// on a listener, so that one client (a tenant, or anyone who reaches the
// port) cannot exhaust a process's file descriptors. The servers' API and
// the agents' listeners use it.
package netlimit

import (
	"net"
	"sync"
)

// PerClient returns ln closing every new connection whose remote IP already
// holds max open ones; max <= 0 returns ln unchanged.
func PerClient(ln net.Listener, max int) net.Listener {
	if max <= 0 {
		return ln
	}
	return &limiter{Listener: ln, max: max, per: map[string]int{}}
}

type limiter struct {
	net.Listener
	max int
	mu  sync.Mutex
	per map[string]int
}

func (l *limiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		l.mu.Lock()
		if l.per[host] >= l.max {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.per[host]++
		l.mu.Unlock()
		return &conn{Conn: c, release: func() { l.release(host) }}, nil
	}
}

func (l *limiter) release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.per[host]--; l.per[host] <= 0 {
		delete(l.per, host)
	}
}

// conn gives its slot back once, when closed.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
