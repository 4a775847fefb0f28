package inventory

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/ark-sched/ark/scheduler/api"
)

// GPUSample is one GPU's live figures, with the meanings of NVIDIA's DCGM
// exporter fields (named after each).
type GPUSample struct {
	Index int
	UUID  string
	Model string
	// Utilization is the fraction of the last sample period a kernel ran
	// (DCGM_FI_DEV_GPU_UTIL / 100), 0..1.
	Utilization float64
	// MemoryUsedBytes and MemoryFreeBytes are framebuffer memory
	// (DCGM_FI_DEV_FB_USED, DCGM_FI_DEV_FB_FREE).
	MemoryUsedBytes int64
	MemoryFreeBytes int64
	// PowerWatts is the board's power draw (DCGM_FI_DEV_POWER_USAGE).
	PowerWatts float64
	// TemperatureCelsius is the GPU die's (DCGM_FI_DEV_GPU_TEMP).
	TemperatureCelsius float64
	// XIDErrors counts the critical XID events seen since the sampler
	// started; LastXID is the last one's code (DCGM_FI_DEV_XID_ERRORS),
	// 0 before any.
	XIDErrors uint64
	LastXID   uint64
}

// NVMLSampler reads GPU figures through NVML. XID errors arrive as NVML
// events; each Sample drains the ones queued since the last, without
// waiting.
type NVMLSampler struct {
	lib    nvml.Interface
	gpus   []api.GPU
	devs   []nvml.Device
	events nvml.EventSet // nil when the driver gives no XID events

	mu      sync.Mutex
	xids    []uint64 // by position in gpus
	lastXID []uint64
}

// NewNVMLSampler opens NVML for gpus (as DiscoverNVML found them). Close it.
func NewNVMLSampler(lib nvml.Interface, gpus []api.GPU) (*NVMLSampler, error) {
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return nil, fmt.Errorf("nvml init: %s", lib.ErrorString(ret))
	}
	s := &NVMLSampler{lib: lib, gpus: gpus, xids: make([]uint64, len(gpus)), lastXID: make([]uint64, len(gpus))}
	for _, g := range gpus {
		dev, ret := lib.DeviceGetHandleByIndex(g.Index)
		if ret != nvml.SUCCESS {
			lib.Shutdown()
			return nil, fmt.Errorf("nvml device %d: %s", g.Index, lib.ErrorString(ret))
		}
		s.devs = append(s.devs, dev)
	}
	if set, ret := lib.EventSetCreate(); ret == nvml.SUCCESS {
		s.events = set
		for _, dev := range s.devs {
			// A GPU that cannot report XIDs (some vGPUs) still reports
			// the rest; its count stays 0.
			dev.RegisterEvents(nvml.EventTypeXidCriticalError, set)
		}
	}
	return s, nil
}

// Close releases NVML.
func (s *NVMLSampler) Close() {
	if s.events != nil {
		s.events.Free()
	}
	s.lib.Shutdown()
}

// Sample reads every GPU. A figure the GPU does not support is left 0; a
// GPU that cannot be read at all is an error naming it.
func (s *NVMLSampler) Sample() ([]GPUSample, error) {
	s.drainXIDs()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]GPUSample, 0, len(s.devs))
	for i, dev := range s.devs {
		g := s.gpus[i]
		sm := GPUSample{Index: g.Index, UUID: g.UUID, Model: g.Model, XIDErrors: s.xids[i], LastXID: s.lastXID[i]}
		mem, ret := dev.GetMemoryInfo()
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("nvml device %d (%s) memory: %s", g.Index, g.UUID, s.lib.ErrorString(ret))
		}
		sm.MemoryUsedBytes, sm.MemoryFreeBytes = int64(mem.Used), int64(mem.Free)
		if u, ret := dev.GetUtilizationRates(); ret == nvml.SUCCESS {
			sm.Utilization = float64(u.Gpu) / 100
		}
		if mw, ret := dev.GetPowerUsage(); ret == nvml.SUCCESS {
			sm.PowerWatts = float64(mw) / 1000
		}
		if c, ret := dev.GetTemperature(nvml.TEMPERATURE_GPU); ret == nvml.SUCCESS {
			sm.TemperatureCelsius = float64(c)
		}
		out = append(out, sm)
	}
	return out, nil
}

// drainXIDs counts the XID events queued since the last call.
func (s *NVMLSampler) drainXIDs() {
	if s.events == nil {
		return
	}
	for range 1024 { // bounded: a storm of events cannot hold a scrape
		ev, ret := s.events.Wait(0)
		if ret != nvml.SUCCESS {
			return
		}
		if ev.EventType != nvml.EventTypeXidCriticalError || ev.Device == nil {
			continue
		}
		uuid, ret := ev.Device.GetUUID()
		if ret != nvml.SUCCESS {
			continue
		}
		s.mu.Lock()
		for i, g := range s.gpus {
			if g.UUID == uuid {
				s.xids[i]++
				s.lastXID[i] = ev.EventData
			}
		}
		s.mu.Unlock()
	}
}

// FakeSampler gives fake GPUs (--fake-gpus) figures that follow what runs
// on them: load is the share of each GPU the node's tasks hold (1 for a
// whole GPU, 0.25 for a quarter share), and utilisation, memory, power and
// temperature follow it as on a real board, with a little jitter. Idle
// fake GPUs report idle figures, never nothing.
type FakeSampler struct {
	gpus []api.GPU
	load func(index int) float64
	now  func() time.Time
}

// NewFakeSampler samples gpus under the load load reports (0..1).
func NewFakeSampler(gpus []api.GPU, load func(index int) float64) *FakeSampler {
	return &FakeSampler{gpus: gpus, load: load, now: time.Now}
}

// Sample reads every fake GPU.
func (f *FakeSampler) Sample() ([]GPUSample, error) {
	t := f.now()
	out := make([]GPUSample, 0, len(f.gpus))
	for _, g := range f.gpus {
		out = append(out, plausible(g, f.load(g.Index), t))
	}
	return out, nil
}

// plausible is what a board under load (0..1) reads at t: 0-2% busy, 0.5
// GiB of driver memory, a third of its power limit and 32°C when idle; up
// to 97% busy, 90% of its memory, its full power limit and 72°C under a
// whole task. The jitter is a slow wave per GPU, so successive scrapes
// move as a real board's do.
func plausible(g api.GPU, load float64, t time.Time) GPUSample {
	load = math.Max(0, math.Min(1, load))
	wave := math.Sin(float64(t.UnixMilli())/7000 + float64(g.Index)) // -1..1
	limit := powerLimitWatts(g.Model)
	util := math.Max(0, math.Min(1, 0.01+0.96*load+0.02*wave*load+0.01*wave))
	used := int64(512<<20) + int64(float64(g.MemoryBytes)*0.9*load)
	used = min(used, g.MemoryBytes)
	return GPUSample{
		Index: g.Index, UUID: g.UUID, Model: g.Model,
		Utilization:        util,
		MemoryUsedBytes:    used,
		MemoryFreeBytes:    g.MemoryBytes - used,
		PowerWatts:         math.Round(math.Min(limit, limit/3+(limit*2/3)*util+5*wave)*10) / 10,
		TemperatureCelsius: math.Round(32 + 40*util + 1.5*wave),
	}
}

// powerLimitWatts is a board's power limit by model name, for fake GPUs.
func powerLimitWatts(model string) float64 {
	for _, m := range []struct {
		name  string
		watts float64
	}{{"B200", 1000}, {"H200", 700}, {"H100", 700}, {"A100", 400}, {"L40", 300}, {"A10", 150}, {"T4", 70}} {
		if containsFold(model, m.name) {
			return m.watts
		}
	}
	return 300
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToUpper(s), strings.ToUpper(sub))
}
