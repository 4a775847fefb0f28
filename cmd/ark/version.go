package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/kernels/cuda"
)

// version is the release this binary was built as; releases set it with
// -ldflags "-X main.version=v1.2.3". A plain go build says "dev", and the
// commit below tells such builds apart.
var version = "dev"

// commit may be set with -ldflags "-X main.commit=..." where go build
// cannot stamp one (a tarball, GOFLAGS=-buildvcs=false); the VCS stamp
// wins when there is one.
var commit = ""

// buildInfo is what `ark version` reports.
type buildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Modified  bool   `json:"modified"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
	// CUDAArchs are the GPU architectures whose kernels the binary carries
	// compiled (a GPU of another one needs NVRTC at run time); CUDANVRTC is
	// the NVRTC that compiled them.
	CUDAArchs []string `json:"cudaArchs"`
	CUDANVRTC string   `json:"cudaNVRTC,omitempty"`
}

// readBuildInfo takes the commit from the VCS stamp go build embeds, else
// from the commit variable; without either it says why it cannot tell.
func readBuildInfo() buildInfo {
	c := commit
	if c == "" {
		c = "unknown (built without VCS stamping: -buildvcs=false or outside a git checkout)"
	}
	b := buildInfo{Version: version, Commit: c, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	b.CUDAArchs, b.CUDANVRTC = cuda.EmbeddedArchs()
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	return b
}

func (b buildInfo) String() string {
	commit := b.Commit
	if b.Modified {
		commit += " (modified)"
	}
	kernels := "none embedded (compiled with NVRTC at run time)"
	if len(b.CUDAArchs) > 0 {
		kernels = strings.Join(b.CUDAArchs, ", ") + " (NVRTC " + b.CUDANVRTC + ")"
	}
	return fmt.Sprintf("ark %s\ncommit: %s\ngo: %s %s\ncuda kernels: %s", b.Version, commit, b.GoVersion, b.Platform, kernels)
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit, Go version and embedded CUDA architectures of this binary",
		Example: "  ark version\n  ark --version\n  ark version -o json",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := readBuildInfo()
			if g.json() {
				return printJSON(cmd.OutOrStdout(), b)
			}
			fmt.Fprintln(cmd.OutOrStdout(), b)
			return nil
		},
	}
}

// addVersion registers the version command and makes `ark --version`
// print the same text as `ark version`.
func addVersion(root *cobra.Command, g *globals) {
	root.Version = readBuildInfo().String()
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(newVersionCmd(g))
}
