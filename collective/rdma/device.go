package rdma

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/ark-sched/ark/collective"
)

// verbsOpener opens a device through the dlopen'd libibverbs.
type verbsOpener struct{}

// verbsDevice is an open ibv_context with one protection domain.
type verbsDevice struct {
	lib     *Lib
	dev     string
	ctx, pd unsafe.Pointer
	pi      portInfo
}

func (d *verbsDevice) name() string   { return d.dev }
func (d *verbsDevice) port() portInfo { return d.pi }

func (d *verbsDevice) newQP(memBytes, sendDepth, recvDepth int) (queuePair, error) {
	return d.lib.newQP(d.ctx, d.pd, d.pi.Port, memBytes, sendDepth, recvDepth)
}

func (d *verbsDevice) close() error {
	return errors.Join(d.lib.deallocPD(d.pd), d.lib.closeContext(d.ctx))
}

func (verbsOpener) open(t *Transport, self collective.Self) (device, error) {
	lib, err := Load()
	if err != nil {
		return nil, fmt.Errorf("rdma transport: %w", err)
	}
	names := []string{t.Device}
	if t.Device == "" {
		if names, err = lib.DeviceNames(); err != nil {
			return nil, fmt.Errorf("rdma transport: %w", err)
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("rdma transport: libibverbs lists no device: %w", ErrNoDevice)
		}
	}
	var errs []error
	for _, n := range names {
		d, err := lib.openPort(n, t, self)
		if err == nil {
			return d, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("rdma transport: %w", errors.Join(errs...))
}

// openPort opens device name and checks that t.Port is active; on RoCE it
// picks the source GID.
func (l *Lib) openPort(name string, t *Transport, self collective.Self) (_ *verbsDevice, err error) {
	ctx, dev, err := l.openContext(name)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = l.closeContext(ctx)
		}
	}()
	pa, err := l.queryPort(ctx, t.Port)
	if err != nil {
		return nil, fmt.Errorf("ibv_query_port %s port %d: %w", dev, t.Port, err)
	}
	if pa.state != portActive {
		return nil, fmt.Errorf("%s port %d is not active (state %d): %w", dev, t.Port, pa.state, ErrNoDevice)
	}
	pi := portInfo{Port: t.Port, LID: pa.lid, MTU: uint8(pa.activeMTU), LinkLayer: pa.linkLayer}
	if pi.LinkLayer != linkLayerEthernet && pi.LinkLayer != linkLayerIB {
		pi.LinkLayer = linkLayerIB // "unspecified" is reported by old InfiniBand drivers
	}
	switch {
	case t.GIDIndex != nil:
		pi.GIDIndex = *t.GIDIndex
		if pi.GID, err = l.queryGID(ctx, t.Port, pi.GIDIndex); err != nil {
			return nil, fmt.Errorf("ibv_query_gid %s port %d index %d: %w", dev, t.Port, pi.GIDIndex, err)
		}
	case pi.LinkLayer == linkLayerEthernet:
		var entries []gidEntry
		for i := range pa.gidTblLen {
			g, err := l.queryGID(ctx, t.Port, i)
			if err != nil || g == [16]byte{} {
				continue // unpopulated entries fail to read
			}
			entries = append(entries, gidEntry{Index: i, GID: g, Type: gidType(dev, t.Port, i)})
		}
		e, err := chooseGID(entries, preferredIPs(dev, self.IP))
		if err != nil {
			return nil, fmt.Errorf("%s port %d: %w", dev, t.Port, err)
		}
		pi.GIDIndex, pi.GID = e.Index, e.GID
	default: // InfiniBand: routed by LID within the subnet; the GID only travels for messages
		pi.GID, _ = l.queryGID(ctx, t.Port, 0)
	}
	pd, err := l.allocPD(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dev, err)
	}
	return &verbsDevice{lib: l, dev: dev, ctx: ctx, pd: pd, pi: pi}, nil
}

// preferredIPs is the rank's address first, then the device's netdev
// addresses, for chooseGID.
func preferredIPs(dev, self string) []string {
	ips := []string{self}
	devs, _ := Devices()
	for _, d := range devs {
		if d.Name == dev {
			ips = append(ips, d.IPs...)
		}
	}
	return ips
}
