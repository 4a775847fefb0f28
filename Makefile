# Ark. `make demo` runs the main job on the embedded defaults; `make test`
# runs the tests (what CI runs through .ci/run).

GO        ?= go
SHELL     := /bin/bash
BIN       := bin/ark
# go-nvml's bundled NVML header marks many calls deprecated; the warnings
# are noise for us.
export CGO_CFLAGS ?= -Wno-deprecated-declarations
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Packages whose tests are single-threaded and gain nothing from -race are
# still run with it: the state store, server, agent and collectives are
# concurrent, and one flag for all keeps the command simple.
TESTFLAGS ?= -race -count=1 -timeout 15m

.PHONY: build test test-short lint fuzz demo image clean

build:
	$(GO) build -o $(BIN) ./cmd/ark

# go test -json through a small reporter: plain go test's output, then a
# summary with every skipped test and its reason. Under CI=true a skip that
# .ci/allowed-skips does not excuse fails the run.
test: build
	set -o pipefail; $(GO) test $(TESTFLAGS) -json ./... | $(GO) run ./internal/testsummary -allow .ci/allowed-skips

# Unit tests only: skips the multi-process system tests.
test-short:
	set -o pipefail; $(GO) test $(TESTFLAGS) -short -json ./... | $(GO) run ./internal/testsummary -strict=false

lint:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# A short run of every fuzz target (FUZZTIME each).
FUZZTIME ?= 20s
FUZZ_TARGETS := \
	./scheduler/spec:FuzzDecode \
	./scheduler/state:FuzzReadSnapshot \
	./scheduler/state:FuzzRegisterJobsBinary \
	./storage/checkpoint:FuzzDecodeManifest \
	./storage/crypt:FuzzDecrypt \
	./collective:FuzzChunking \
	./collective/rdma:FuzzParseAddr \
	./collective/rdma:FuzzDecodeWire \
	./collective:FuzzTCPHello \
	./collective:FuzzCtrlFrames \
	./storage/checkpoint:FuzzSplitURI \
	./worker/train:FuzzSplitJobURI \
	./worker/driver:FuzzReadStatus \
	./worker/agent:FuzzTaskReport \
	./worker/agent:FuzzParseLoad \
	./scheduler/server:FuzzLoadTokens \
	./scheduler/server:FuzzLoadQueues \
	./scheduler/server:FuzzHTTPBodies \
	./internal/audit:FuzzVerify \
	./worker/tokenizer:FuzzRoundTrip \
	./worker/train/hfimport:FuzzSafetensors \
	./worker/train:FuzzReadQAPairs \
	./worker/serve/rules:FuzzOutputFilter \
	./worker/serve/rules:FuzzBoundedRegexWindow \
	./worker/serve:FuzzReadStream \
	./worker/serve:FuzzScanChunk \
	./scheduler/spec:FuzzFastDecode \
	./internal/audit:FuzzAppendEntry

# Each target through .ci/fuzz-one.sh, which retries once a run that ended
# on Go 1.26's fuzzing-deadline race without a failing input.
fuzz:
	@for t in $(FUZZ_TARGETS); do bash .ci/fuzz-one.sh "$${t%%:*}" "$${t##*:}" $(FUZZTIME) || exit 1; done

demo: build
	bash examples/demo.sh

# The container image (FROM scratch, the static ark binary), tagged
# $(IMAGE):$(IMAGE_VERSION) (default: git describe) and $(IMAGE):latest;
# deploy/docker/. deploy/k8s/ runs ark:v0.1.0: make image IMAGE_VERSION=v0.1.0.
IMAGE ?= ark
IMAGE_VERSION ?=
image:
	bash deploy/docker/build.sh $(IMAGE) $(IMAGE_VERSION)

clean:
	rm -rf bin
