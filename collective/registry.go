package collective

import (
	"errors"
	"fmt"
	"sync"
)

// Transports implemented in other packages register a constructor under a
// name, which Options.TransportName and ARK_COLL_TRANSPORT then accept, as
// database/sql drivers do: collective/rdma registers "rdma" in its init, so
// a binary that imports it (even as `import _ ".../collective/rdma"`) can
// select it without this package importing rdma (which imports this one).
var registry struct {
	mu   sync.Mutex
	open map[string]func() (Transport, error)
}

// RegisterTransport makes open selectable by name. open runs once per
// Communicator and returns an error (wrapped into New's) when the transport
// cannot work on this machine. It panics when name is built in ("auto",
// "tcp", "shm") or already registered.
func RegisterTransport(name string, open func() (Transport, error)) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	switch _, dup := registry.open[name]; {
	case name == "auto" || name == "tcp" || name == "shm" || name == "":
		panic(fmt.Sprintf("collective: RegisterTransport of built-in name %q", name))
	case dup:
		panic(fmt.Sprintf("collective: RegisterTransport called twice for %q", name))
	}
	if registry.open == nil {
		registry.open = map[string]func() (Transport, error){}
	}
	registry.open[name] = open
}

func registeredTransport(name string) (func() (Transport, error), bool) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	open, ok := registry.open[name]
	return open, ok
}

// openRegistered builds the registered transport name; its Name must match.
func openRegistered(name string) (Transport, error) {
	open, ok := registeredTransport(name)
	if !ok {
		return nil, fmt.Errorf("transport %q is not registered: %w", name, ErrInvalid)
	}
	tr, err := open()
	if err != nil {
		return nil, fmt.Errorf("transport %s: %w", name, err)
	}
	if tr.Name() != name {
		return nil, fmt.Errorf("transport registered as %q names itself %q: %w", name, tr.Name(), ErrInvalid)
	}
	return tr, nil
}

// interHost is the transport auto uses between hosts besides tcp: o.RDMA,
// else the registered "rdma" when it opens here. A missing library or
// device is not an error (auto then uses tcp between hosts); a malformed
// configuration (ErrInvalid, e.g. ARK_COLL_RDMA_PORT=x) is.
func (o *Options) interHost() (Transport, error) {
	if o.RDMA != nil {
		return o.RDMA, nil
	}
	if _, ok := registeredTransport("rdma"); !ok {
		return nil, nil
	}
	tr, err := openRegistered("rdma")
	switch {
	case errors.Is(err, ErrInvalid):
		return nil, err
	case err != nil:
		return nil, nil
	}
	return tr, nil
}
