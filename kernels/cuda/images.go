package cuda

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The ark binary carries kernels.cu precompiled, so a GPU machine needs only
// the driver's libcuda.so.1: cubins for the A100 (sm_80, runs on every 8.x
// GPU) and H100/H200 (sm_90, every 9.x) generations, and PTX for compute_90
// that the driver compiles for newer GPUs. Other architectures (7.x) fall
// back to NVRTC at run time. `go generate ./kernels/cuda` rebuilds them
// with NVRTC (internal/cubingen); TestEmbeddedImagesMatchSource fails when
// kernels.cu or the compile options change without regenerating.
//
//go:generate go run ./internal/cubingen -dir images

//go:embed images
var imageFS embed.FS

// imageDir is the directory of imageFS holding the images and manifestFile.
const (
	imageDir     = "images"
	manifestFile = "manifest.json"
	kernelFile   = "kernels.cu"
)

// embeddedArchs are the architectures go generate builds, in the order a
// manifest lists them.
var embeddedArchs = []string{"sm_80", "sm_90", "compute_90"}

// Manifest records what the embedded images were built from, so a test can
// tell a stale image from a current one without NVRTC.
type manifest struct {
	Source       string       `json:"source"`
	SourceSHA256 string       `json:"sourceSHA256"`
	NVRTC        string       `json:"nvrtc"`   // major.minor of the NVRTC that built them
	Options      []string     `json:"options"` // compileOptions("ARCH")
	Images       []imageEntry `json:"images"`
}

type imageEntry struct {
	Arch   string `json:"arch"`
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	Bytes  int    `json:"bytes"`
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// imageFileName is where an architecture's image is stored: cubins for
// sm_XY, PTX text (without NVRTC's trailing NUL, so it diffs as text) for
// compute_XY.
func imageFileName(arch string) string {
	if strings.HasPrefix(arch, "compute_") {
		return "kernels." + arch + ".ptx"
	}
	return "kernels." + arch + ".cubin"
}

// GenerateImages compiles src (kernels.cu) with NVRTC for every embedded
// architecture and returns the files of the images directory by name,
// manifest.json included. go generate writes them; the test compares them
// with the embedded ones.
func GenerateImages(src []byte) (map[string][]byte, error) {
	ma, mi, err := NVRTCVersion()
	if err != nil {
		return nil, err
	}
	m := manifest{Source: kernelFile, SourceSHA256: sha256Hex(src), NVRTC: fmt.Sprintf("%d.%d", ma, mi),
		Options: compileOptions("ARCH")}
	files := map[string][]byte{}
	for _, arch := range embeddedArchs {
		img, log, err := Compile(string(src), kernelFile, arch)
		if err != nil {
			return nil, fmt.Errorf("%w\n%s", err, log)
		}
		if strings.HasPrefix(arch, "compute_") {
			img = bytes.TrimRight(img, "\x00") // PTX text; the NUL is added back at load
		}
		name := imageFileName(arch)
		files[name] = img
		m.Images = append(m.Images, imageEntry{Arch: arch, File: name, SHA256: sha256Hex(img), Bytes: len(img)})
	}
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	files[manifestFile] = append(mj, '\n')
	return files, nil
}

var (
	embeddedOnce sync.Once
	embedded     manifest
	embeddedErr  error
)

// loadManifest reads the embedded manifest once.
func loadManifest() (manifest, error) {
	embeddedOnce.Do(func() {
		b, err := imageFS.ReadFile(path.Join(imageDir, manifestFile))
		if err != nil {
			embeddedErr = fmt.Errorf("cuda: embedded images: %w", err)
			return
		}
		if err := json.Unmarshal(b, &embedded); err != nil {
			embeddedErr = fmt.Errorf("cuda: embedded %s: %w", manifestFile, err)
		}
	})
	return embedded, embeddedErr
}

// EmbeddedArchs lists the architectures this binary carries kernels for
// ("sm_80", "sm_90", "compute_90"), each with the NVRTC that built it, for
// `ark version`. It is empty when the images do not match the embedded
// kernels.cu (the build then compiles at run time).
func EmbeddedArchs() (archs []string, nvrtc string) {
	m, err := loadManifest()
	if err != nil || m.SourceSHA256 != sha256Hex([]byte(kernelSource)) {
		return nil, ""
	}
	for _, e := range m.Images {
		archs = append(archs, e.Arch)
	}
	return archs, m.NVRTC
}

// parseArch splits "sm_90" or "compute_90" into its kind and 9, 0.
func parseArch(arch string) (kind string, major, minor int, ok bool) {
	kind, num, found := strings.Cut(arch, "_")
	if !found || len(num) < 2 || (kind != "sm" && kind != "compute") {
		return "", 0, 0, false
	}
	major, err1 := strconv.Atoi(num[:len(num)-1])
	minor, err2 := strconv.Atoi(num[len(num)-1:])
	return kind, major, minor, err1 == nil && err2 == nil
}

// pickImage chooses the embedded image for a device of compute capability
// major.minor: a cubin of the same major version and the highest minor not
// above the device's (cubins run on later minors of their major), else PTX
// of the highest compute capability not above the device's, which the
// driver compiles. ok is false when none fits (NVRTC must compile).
func pickImage(entries []imageEntry, major, minor int) (imageEntry, bool) {
	var best imageEntry
	bestCubin, bestPTX := -1, -1
	var ptx imageEntry
	for _, e := range entries {
		kind, ma, mi, ok := parseArch(e.Arch)
		if !ok {
			continue
		}
		switch {
		case kind == "sm" && ma == major && mi <= minor && mi > bestCubin:
			best, bestCubin = e, mi
		case kind == "compute" && (ma < major || ma == major && mi <= minor) && ma*10+mi > bestPTX:
			ptx, bestPTX = e, ma*10+mi
		}
	}
	if bestCubin >= 0 {
		return best, true
	}
	return ptx, bestPTX >= 0
}

// embeddedImage returns the embedded image for a device and the
// architecture it was built for, ready for cuModuleLoadData (PTX ends in a
// NUL). It returns ok false when the images are stale (built from another
// kernels.cu) or none fits the device.
func embeddedImage(major, minor int) (img []byte, arch string, ok bool) {
	m, err := loadManifest()
	if err != nil || m.SourceSHA256 != sha256Hex([]byte(kernelSource)) || !slices.Equal(m.Options, compileOptions("ARCH")) {
		return nil, "", false
	}
	e, ok := pickImage(m.Images, major, minor)
	if !ok {
		return nil, "", false
	}
	b, err := fs.ReadFile(imageFS, path.Join(imageDir, e.File))
	if err != nil || sha256Hex(b) != e.SHA256 {
		return nil, "", false
	}
	if strings.HasPrefix(e.Arch, "compute_") {
		b = append(b[:len(b):len(b)], 0)
	}
	return b, e.Arch, true
}
