//go:build !linux

package collective

import (
	"context"
	"fmt"
)

// ShmTransport is only implemented on Linux.
type ShmTransport struct {
	Dir       string
	RingBytes int
}

// Name implements Transport.
func (t *ShmTransport) Name() string { return "shm" }

// Listen implements Transport.
func (t *ShmTransport) Listen(context.Context, Self) (Endpoint, error) {
	return nil, fmt.Errorf("shm transport: only on linux: %w", ErrInvalid)
}
