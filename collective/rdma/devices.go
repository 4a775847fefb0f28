package rdma

import (
	"fmt"
	"net"

	"github.com/Mellanox/rdmamap"

	"github.com/ark-sched/ark/collective"
)

// Device is an RDMA device as sysfs shows it.
type Device struct {
	Name    string   // e.g. mlx5_0
	Netdevs []string // its network interfaces (RoCE / IPoIB)
	IPs     []string // their IPv4 addresses
}

// Devices lists RDMA devices with their netdevs, from sysfs via rdmamap.
// An empty list with a nil error means the node has none.
func Devices() ([]Device, error) {
	names := rdmamap.GetRdmaDeviceList()
	if len(names) == 0 {
		return nil, nil
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	byDev := map[string]*Device{}
	out := make([]Device, len(names))
	for i, n := range names {
		out[i].Name = n
		byDev[n] = &out[i]
	}
	for _, ifc := range ifs {
		dev, err := rdmamap.GetRdmaDeviceForNetdevice(ifc.Name)
		if err != nil || byDev[dev] == nil {
			continue
		}
		d := byDev[dev]
		d.Netdevs = append(d.Netdevs, ifc.Name)
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				d.IPs = append(d.IPs, ipn.IP.String())
			}
		}
	}
	return out, nil
}

// NetdevTCP returns a TCP transport bound to the first IPv4 address of an
// RDMA device's netdev, so collective traffic uses the RDMA fabric (RoCE
// carries TCP) even without a verbs data path. The error wraps ErrNoDevice
// when the node has no RDMA device with an address.
func NetdevTCP() (*collective.TCPTransport, error) {
	devs, err := Devices()
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		if len(d.IPs) > 0 {
			return &collective.TCPTransport{Bind: d.IPs[0]}, nil
		}
	}
	return nil, fmt.Errorf("no RDMA device with an IPv4 netdev (%d devices): %w", len(devs), ErrNoDevice)
}
