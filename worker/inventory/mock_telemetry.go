package inventory

import (
	"math"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/ark-sched/ark/scheduler/api"
)

// Mock is a mock machine (MockMachine): go-nvml's mock server with the
// telemetry calls and XID events that NVMLSampler reads.
type Mock struct {
	*server.Server
	events *mockEvents
}

// InjectXID queues a critical XID event on GPU index, as the driver
// raises one (XID 79: the GPU fell off the bus; 48: a double-bit ECC
// error).
func (m *Mock) InjectXID(index int, xid uint64) {
	m.events.push(nvml.EventData{Device: m.Devices[index], EventType: nvml.EventTypeXidCriticalError, EventData: xid})
}

// mockEvents is the event queue of the mock's one event set.
type mockEvents struct {
	mu    sync.Mutex
	queue []nvml.EventData
}

func (e *mockEvents) push(ev nvml.EventData) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.queue = append(e.queue, ev)
}

// wait pops the oldest event; with none it times out at once (the mock
// never blocks, whatever the timeout).
func (e *mockEvents) wait(uint32) (nvml.EventData, nvml.Return) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.queue) == 0 {
		return nvml.EventData{}, nvml.ERROR_TIMEOUT
	}
	ev := e.queue[0]
	e.queue = e.queue[1:]
	return ev, nvml.SUCCESS
}

// addTelemetry fills in the live readings go-nvml's mock leaves unset: a
// load that swings slowly between 20% and 90%, different on each GPU, and
// memory, power and temperature that follow it (plausible).
func (m *Mock) addTelemetry() {
	m.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) {
		return &mock.EventSet{
			WaitFunc: m.events.wait,
			FreeFunc: func() nvml.Return { return nvml.SUCCESS },
		}, nvml.SUCCESS
	}
	for i, d := range m.Devices {
		dev := d.(*server.Device)
		g := api.GPU{Index: i, UUID: dev.UUID, Model: dev.Config.Name, MemoryBytes: int64(dev.MemoryInfo.Total)}
		read := func() GPUSample {
			t := time.Now()
			phase := float64(t.UnixMilli())/60000 + float64(i)
			return plausible(g, 0.55+0.35*math.Sin(phase), t)
		}
		dev.RegisterEventsFunc = func(uint64, nvml.EventSet) nvml.Return { return nvml.SUCCESS }
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
			s := read()
			return nvml.Utilization{Gpu: uint32(s.Utilization*100 + 0.5), Memory: uint32(s.Utilization * 60)}, nvml.SUCCESS
		}
		dev.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) {
			s := read()
			return nvml.Memory{Total: uint64(g.MemoryBytes), Used: uint64(s.MemoryUsedBytes), Free: uint64(s.MemoryFreeBytes)}, nvml.SUCCESS
		}
		dev.GetPowerUsageFunc = func() (uint32, nvml.Return) { return uint32(read().PowerWatts * 1000), nvml.SUCCESS }
		dev.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) {
			return uint32(read().TemperatureCelsius), nvml.SUCCESS
		}
	}
}
