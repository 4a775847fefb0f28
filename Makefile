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

.PHONY: build test test-short lint fuzz demo clean

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
fuzz:
	$(GO) test ./scheduler/spec -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./scheduler/state -run '^$$' -fuzz '^FuzzReadSnapshot$$' -fuzztime $(FUZZTIME)
	$(GO) test ./storage/checkpoint -run '^$$' -fuzz '^FuzzDecodeManifest$$' -fuzztime $(FUZZTIME)
	$(GO) test ./storage/crypt -run '^$$' -fuzz '^FuzzDecrypt$$' -fuzztime $(FUZZTIME)
	$(GO) test ./collective -run '^$$' -fuzz '^FuzzChunking$$' -fuzztime $(FUZZTIME)
	$(GO) test ./collective/rdma -run '^$$' -fuzz '^FuzzParseAddr$$' -fuzztime $(FUZZTIME)
	$(GO) test ./collective/rdma -run '^$$' -fuzz '^FuzzDecodeWire$$' -fuzztime $(FUZZTIME)
	$(GO) test ./collective -run '^$$' -fuzz '^FuzzTCPHello$$' -fuzztime $(FUZZTIME)
	$(GO) test ./collective -run '^$$' -fuzz '^FuzzCtrlFrames$$' -fuzztime $(FUZZTIME)
	$(GO) test ./storage/checkpoint -run '^$$' -fuzz '^FuzzSplitURI$$' -fuzztime $(FUZZTIME)
	$(GO) test ./worker/train -run '^$$' -fuzz '^FuzzSplitJobURI$$' -fuzztime $(FUZZTIME)
	$(GO) test ./worker/driver -run '^$$' -fuzz '^FuzzReadStatus$$' -fuzztime $(FUZZTIME)
	$(GO) test ./worker/agent -run '^$$' -fuzz '^FuzzTaskReport$$' -fuzztime $(FUZZTIME)
	$(GO) test ./scheduler/server -run '^$$' -fuzz '^FuzzLoadTokens$$' -fuzztime $(FUZZTIME)
	$(GO) test ./scheduler/server -run '^$$' -fuzz '^FuzzLoadQueues$$' -fuzztime $(FUZZTIME)
	$(GO) test ./scheduler/server -run '^$$' -fuzz '^FuzzHTTPBodies$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/audit -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME)

demo: build
	bash examples/demo.sh

clean:
	rm -rf bin
