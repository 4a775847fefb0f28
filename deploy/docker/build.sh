#!/usr/bin/env bash
# Builds the Ark image (make image): a static ark binary and the few files a
# FROM-scratch image needs, then docker build. Usage:
#   deploy/docker/build.sh [IMAGE [VERSION]]     (defaults: ark, git describe)
# Tags IMAGE:VERSION and IMAGE:latest and prints the image's size.
set -euo pipefail
cd "$(dirname "$0")/../.."

image=${1:-ark}
version=${2:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
ctx=bin/image-context
certs=/etc/ssl/certs/ca-certificates.crt
[ -f "$certs" ] || { echo "build.sh: $certs not found (apt-get install ca-certificates)" >&2; exit 1; }

rm -rf "$ctx"
mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/tmp" "$ctx/data"
chmod 1777 "$ctx/rootfs/tmp"
chmod 0700 "$ctx/data"

# cgo stays on (go-nvml, the CPU kernels and the dlopen'd CUDA/NCCL/verbs
# loaders need it: CGO_ENABLED=0 does not build), linked statically so the
# binary runs in scratch. netgo and osusergo keep DNS and user look-ups in
# Go (glibc's NSS cannot be used from a static binary). dlopen from a static
# binary finds nothing in scratch: NVML, CUDA and NCCL report "not found",
# which is what a container with fake GPUs wants (see deploy/k8s/ for GPUs).
# The linker's warning about dlopen in static binaries says exactly that.
CGO_ENABLED=1 CGO_CFLAGS=${CGO_CFLAGS:--Wno-deprecated-declarations} go build \
	-tags osusergo,netgo -trimpath \
	-ldflags "-s -w -linkmode external -extldflags -static -X main.version=$version -X main.commit=$revision" \
	-o "$ctx/rootfs/usr/local/bin/ark" ./cmd/ark 2> >(grep -v -e '^# github.com/ark-sched/ark/cmd/ark$' -e 'statically linked applications requires at runtime' -e 'in function `' >&2)
cp deploy/docker/passwd deploy/docker/group "$ctx/rootfs/etc/"
cp "$certs" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"

docker build -q -f deploy/docker/Dockerfile \
	--build-arg VERSION="$version" --build-arg REVISION="$revision" \
	--build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
	-t "$image:$version" -t "$image:latest" "$ctx" >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$image:$version")
echo "built $image:$version (and $image:latest): $((size / 1024 / 1024)) MiB"
