package cuda

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
)

// TestEmbeddedImagesMatchSource: the embedded images were built from this
// kernels.cu with today's compile options, each file is the one the
// manifest records, and nothing else is embedded. Where NVRTC of the
// manifest's version is present (CI installs 11.8), the images are rebuilt
// and must be byte-identical. On failure: go generate ./kernels/cuda.
func TestEmbeddedImagesMatchSource(t *testing.T) {
	m, err := loadManifest()
	if err != nil {
		t.Fatal(err)
	}
	const regen = "(kernels.cu or the options changed without regenerating: run go generate ./kernels/cuda)"
	if got := sha256Hex([]byte(kernelSource)); m.SourceSHA256 != got {
		t.Errorf("manifest records kernels.cu sha256 %s, the source is %s %s", m.SourceSHA256, got, regen)
	}
	if want := compileOptions("ARCH"); !slices.Equal(m.Options, want) {
		t.Errorf("manifest records options %q, compileOptions is %q %s", m.Options, want, regen)
	}
	var archs []string
	listed := map[string]bool{manifestFile: true}
	for _, e := range m.Images {
		archs = append(archs, e.Arch)
		listed[e.File] = true
		b, err := fs.ReadFile(imageFS, path.Join(imageDir, e.File))
		if err != nil {
			t.Errorf("%s: %v", e.Arch, err)
			continue
		}
		if sha256Hex(b) != e.SHA256 || len(b) != e.Bytes {
			t.Errorf("%s: %s is %d bytes, sha256 %s; manifest says %d, %s", e.Arch, e.File, len(b), sha256Hex(b), e.Bytes, e.SHA256)
		}
		switch {
		case strings.HasPrefix(e.Arch, "sm_") && !bytes.HasPrefix(b, []byte("\x7fELF")):
			t.Errorf("%s: %s is not an ELF cubin", e.Arch, e.File)
		case strings.HasPrefix(e.Arch, "compute_") && !bytes.Contains(b, []byte(".target "+"sm_"+strings.TrimPrefix(e.Arch, "compute_"))):
			t.Errorf("%s: %s is not PTX for that target", e.Arch, e.File)
		}
		t.Logf("embedded %s: %s, %d bytes (NVRTC %s)", e.Arch, e.File, e.Bytes, m.NVRTC)
	}
	if !slices.Equal(archs, embeddedArchs) {
		t.Errorf("manifest lists %v, want %v %s", archs, embeddedArchs, regen)
	}
	entries, err := fs.ReadDir(imageFS, imageDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !listed[e.Name()] {
			t.Errorf("%s/%s is embedded but not in the manifest (a stale image?)", imageDir, e.Name())
		}
	}

	// Rebuild and compare where the same NVRTC is here.
	ma, mi := requireNVRTC(t)
	if v := fmt.Sprintf("%d.%d", ma, mi); v != m.NVRTC {
		t.Logf("NVRTC here is %s, the images were built with %s: not rebuilt to compare (the hashes above were checked)", v, m.NVRTC)
		return
	}
	files, err := GenerateImages([]byte(kernelSource))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := fs.ReadFile(imageFS, path.Join(imageDir, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: rebuilt with NVRTC %s it differs from the embedded one (%d vs %d bytes) %s", name, m.NVRTC, len(want), len(got), regen)
		}
	}
}

// TestPickImage: a device gets the cubin of its major version with the
// highest minor not above its own, else PTX it can JIT, else nothing
// (NVRTC compiles).
func TestPickImage(t *testing.T) {
	m, err := loadManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		major, minor int
		want         string
	}{
		{8, 0, "sm_80"}, {8, 6, "sm_80"}, {8, 9, "sm_80"}, {9, 0, "sm_90"},
		{10, 0, "compute_90"}, {12, 0, "compute_90"}, {7, 5, ""}, {7, 0, ""},
	} {
		e, ok := pickImage(m.Images, c.major, c.minor)
		if got := map[bool]string{true: e.Arch}[ok]; got != c.want {
			t.Errorf("compute capability %d.%d: picked %q, want %q", c.major, c.minor, got, c.want)
		}
	}
	// A cubin of a later minor than the device's does not run there.
	if e, ok := pickImage([]imageEntry{{Arch: "sm_86"}}, 8, 0); ok {
		t.Errorf("8.0 picked %s", e.Arch)
	}
}

// TestEmbeddedImage: what the Device hands to cuModuleLoadData, and what
// `ark version` lists.
func TestEmbeddedImage(t *testing.T) {
	img, arch, ok := embeddedImage(9, 0)
	if !ok || arch != "sm_90" || !bytes.HasPrefix(img, []byte("\x7fELF")) {
		t.Fatalf("embeddedImage(9, 0) = %d bytes, %q, %v", len(img), arch, ok)
	}
	img, arch, ok = embeddedImage(10, 0)
	if !ok || arch != "compute_90" || img[len(img)-1] != 0 || bytes.IndexByte(img, 0) != len(img)-1 {
		t.Fatalf("embeddedImage(10, 0): %q, %v; want PTX ending in its only NUL", arch, ok)
	}
	if _, _, ok := embeddedImage(7, 5); ok {
		t.Error("embeddedImage(7, 5) found an image; sm_75 has none")
	}
	archs, nvrtc := EmbeddedArchs()
	if !slices.Equal(archs, embeddedArchs) || nvrtc == "" {
		t.Errorf("EmbeddedArchs() = %v, %q", archs, nvrtc)
	}
}
