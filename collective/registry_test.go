package collective

import (
	"errors"
	"testing"
)

// renamed is a TCP transport under another name, to test registration.
type renamed struct {
	TCPTransport
	name string
}

func (r *renamed) Name() string { return r.name }

func TestRegisterTransport(t *testing.T) {
	RegisterTransport("test-renamed", func() (Transport, error) { return &renamed{name: "test-renamed"}, nil })
	RegisterTransport("test-misnamed", func() (Transport, error) { return &renamed{name: "other"}, nil })
	failing := errors.New("no hardware")
	RegisterTransport("test-failing", func() (Transport, error) { return nil, failing })

	o := Options{WorldSize: 1, MasterAddr: "127.0.0.1:1", TransportName: "test-renamed"}
	if _, err := o.withDefaults(); err != nil {
		t.Fatalf("registered name refused: %v", err)
	}
	o.TransportName = "test-unknown"
	if _, err := o.withDefaults(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown name: %v", err)
	}
	if tr, err := openRegistered("test-renamed"); err != nil || tr.Name() != "test-renamed" {
		t.Fatalf("open: %v %v", tr, err)
	}
	if _, err := openRegistered("test-misnamed"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("name mismatch: %v", err)
	}
	if _, err := openRegistered("test-failing"); !errors.Is(err, failing) {
		t.Fatalf("constructor error not wrapped: %v", err)
	}
	for _, name := range []string{"tcp", "auto", "shm", "", "test-renamed"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RegisterTransport(%q) did not panic", name)
				}
			}()
			RegisterTransport(name, func() (Transport, error) { return nil, nil })
		}()
	}
}
