package inventory

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh200"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// MockMachine returns go-nvml's mock of a whole machine ("dgxh100",
// "dgxh200": 8 GPUs behind NVSwitch) with the topology calls the mock
// leaves unset filled in as on the real machine: GPUs 0-3 on NUMA node 0
// and 4-7 on node 1, all eight in one NVLink domain. It lets an agent (ark
// agent --mock-nvml) and the tests take the real NVML code path without a
// GPU. Its telemetry (mock_telemetry.go) reads as a machine under a
// varying load, and XID events can be injected.
func MockMachine(name string) (*Mock, error) {
	var srv *server.Server
	switch name {
	case "dgxh100":
		srv = dgxh100.New()
	case "dgxh200":
		srv = dgxh200.New()
	default:
		return nil, fmt.Errorf("unknown mock machine %q (dgxh100 or dgxh200)", name)
	}
	n := len(srv.Devices)
	for i, d := range srv.Devices {
		dev, numa := d.(*server.Device), i*2/n
		dev.GetNumaNodeIdFunc = func() (int, nvml.Return) { return numa, nvml.SUCCESS }
		dev.GetP2PStatusFunc = func(other nvml.Device, idx nvml.GpuP2PCapsIndex) (nvml.GpuP2PStatus, nvml.Return) {
			if idx == nvml.P2P_CAPS_INDEX_NVLINK {
				return nvml.P2P_STATUS_OK, nvml.SUCCESS
			}
			return nvml.P2P_STATUS_NOT_SUPPORTED, nvml.ERROR_NOT_SUPPORTED
		}
	}
	m := &Mock{Server: srv, events: &mockEvents{}}
	m.addTelemetry()
	return m, nil
}
