package cuda

// compileOptions are the NVRTC options for every Ark CUDA source: the run-time
// fallback, the embedded images (go generate) and the compile test all use
// them, so an embedded image is what the fallback would have built.
func compileOptions(arch string) []string {
	return []string{"--gpu-architecture=" + arch, "--std=c++14", "-default-device"}
}
