// Package serve is Ark's builtin inference server: it loads a checkpoint of
// the builtin GPT (worker/train) and answers generation requests over
// HTTP. An inference job's replicas each run one (ark task serve), on the
// port the scheduler reserved for the replica on its node; `ark task serve
// --base URI --listen ADDR` runs one standalone.
//
// The Engine (engine.go) batches continuously: one goroutine owns the
// model's device; requests wait in a bounded FIFO queue (past it: 429 with
// Retry-After), are prefilled into their own KV cache (train.Decoder), and
// decode one token per step together with every other running request,
// leaving the batch on max tokens, a stop string, their deadline or their
// client leaving. The byte-level vocabulary has no end-of-sequence token.
//
// The HTTP API (openai.go) is OpenAI's: POST /v1/completions and
// /v1/chat/completions (whole, or "stream": true as Server-Sent Events
// ending in data: [DONE]; sse.go writes a stream's chunks, those the
// engine has already sent in one write and one flush), GET /v1/models; plus GET /v1/health and Ark's
// own POST /v1/generate, which `ark infer` uses by default. `model` must be
// the served model's name (the builtin preset's, e.g. gpt-tiny) or an
// adapter's; left out, it is the base's (as vLLM). The chat template is
// one line per message, "ROLE: CONTENT\n", then "assistant:". A prompt must
// fit the model's context; generation may run past it (the decoder slides
// its window). Only n=1 is supported. Defaults: max_tokens 16
// (completions) or 128 (chat), temperature 1, a random seed.
//
// One base serves N LoRA adapters ("1+N"): `model` names the base or an
// adapter, and requests for different adapters share each decode step (the
// decoder applies each row's own adapter with one gathered kernel call per
// layer, train.Decoder.SetAdapterSlots). Adapters live in three tiers
// (adapters.go): active in one of AdapterSlots compute slots (engine_slots.go:
// a slot held by running requests is never taken; otherwise the least
// recently used is reused; by default as many slots as MaxBatch, so no
// request waits for one: with 8, 32 requests over 100 adapters queued for
// slots, 1+N fell to 0.62x the base's throughput with a TTFT of ~100 ms),
// an LRU cache of HostAdapters in host memory
// (pinned ones are never evicted), and the object store, fetched in the
// background: a request whose adapter is being fetched, or for which no slot
// is free, keeps its place in the queue while requests behind it run. An
// adapter is checked against the base on load (train.AdapterWeights.CheckBase:
// the base's parameter checksum). They come from Options.Adapters
// (task.builtin.adapters, --adapter NAME=URI) and at run time from
// POST /v1/adapters {"name","uri"} (vLLM's lora_name/lora_path accepted),
// which answers once the adapter is in host memory; DELETE
// /v1/adapters/{name} removes one (its running requests finish); GET
// /v1/adapters shows each adapter's tier. Managing adapters needs
// Options.AdminToken as a bearer token, or, without one, a loopback client.
// SetAdapters (adapters_sync.go) applies a new version of the spec's list
// in place: in an Ark task, ark task serve calls it whenever its agent
// reports a new job version (ark job adapter add|rm commit one), and sets
// AdminToken to a random token no one holds, so the spec is the only way
// to change what the replica serves.
// What 1+N and batching cost is measured by ark bench serve (bench/README.md,
// "Serving"): each row's adapter update is one fused AVX-512 call per row
// in the CPU kernels (kernels/cpu GatherLoRA), reading its slot's factors
// only up to the adapter's own rank (a rank-8 adapter in the default
// rank-16 slots reads half); with every row on its own adapter, those
// reads, not the flops, are what 1+N costs.
// client.go holds the client's side: the wire types and ReadStream, the
// reader of a streamed answer (ark infer --stream).
// GET /v1/models lists adapters with the base as parent and their
// checkpoint as root. RunLoad (loadgen.go) is the load generator of
// `ark bench serve`.
package serve
