package rdma

import (
	"fmt"
	"os"
	"strconv"

	"github.com/ark-sched/ark/collective"
)

// Importing this package makes ARK_COLL_TRANSPORT=rdma (or
// Options.TransportName "rdma") select Transport, configured by FromEnv.
func init() {
	collective.RegisterTransport("rdma", func() (collective.Transport, error) { return FromEnv() })
}

// FromEnv returns a Transport configured from ARK_COLL_RDMA_DEVICE,
// ARK_COLL_RDMA_PORT, ARK_COLL_RDMA_GID_INDEX and ARK_COLL_RDMA_TC (unset
// means the defaults). It fails early, with an error wrapping ErrNoLibrary
// or ErrNoDevice, when libibverbs.so.1 does not load or lists no device.
func FromEnv() (*Transport, error) {
	t := &Transport{Device: os.Getenv("ARK_COLL_RDMA_DEVICE")}
	for _, v := range []struct {
		key string
		dst *int
	}{{"ARK_COLL_RDMA_PORT", &t.Port}, {"ARK_COLL_RDMA_TC", &t.TrafficClass}, {"ARK_COLL_RDMA_GID_INDEX", nil}} {
		s, ok := os.LookupEnv(v.key)
		if !ok || s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%s=%q: want a non-negative integer: %w", v.key, s, collective.ErrInvalid)
		}
		if v.dst == nil {
			t.GIDIndex = &n
		} else {
			*v.dst = n
		}
	}
	if _, err := t.withDefaults(); err != nil {
		return nil, err
	}
	l, err := Load()
	if err != nil {
		return nil, err
	}
	names, err := l.DeviceNames()
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("libibverbs lists no device: %w", ErrNoDevice)
	}
	return t, nil
}
