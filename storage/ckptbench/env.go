package ckptbench

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
)

// Env describes the machine a benchmark ran on.
type Env struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	GPU    string `json:"gpu"`
	OS     string `json:"os"`
	Go     string `json:"go"`
	Commit string `json:"commit"`
}

// DetectEnv fills Env from the running machine.
func DetectEnv() Env {
	return Env{
		CPU:    cpuModel(),
		Cores:  runtime.NumCPU(),
		GPU:    gpus(),
		OS:     runtime.GOOS + "/" + runtime.GOARCH,
		Go:     runtime.Version(),
		Commit: commit(),
	}
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func gpus() string {
	ents, err := os.ReadDir("/proc/driver/nvidia/gpus")
	if err != nil || len(ents) == 0 {
		return "none"
	}
	var names []string
	for _, e := range ents {
		b, err := os.ReadFile("/proc/driver/nvidia/gpus/" + e.Name() + "/information")
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "Model" {
				names = append(names, strings.TrimSpace(v))
			}
		}
	}
	if len(names) == 0 {
		return "nvidia (model unknown)"
	}
	return strings.Join(names, ", ")
}

func commit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if len(rev) >= 12 {
			return rev[:12] + dirty
		}
	}
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
