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
// ending in data: [DONE]), GET /v1/models; plus GET /v1/health and Ark's
// own POST /v1/generate, which `ark infer` uses. `model` must be the served
// model's name (the builtin preset's, e.g. gpt-tiny). The chat template is
// one line per message, "ROLE: CONTENT\n", then "assistant:". A prompt must
// fit the model's context; generation may run past it (the decoder slides
// its window). Only n=1 is supported. Defaults: max_tokens 16
// (completions) or 128 (chat), temperature 1, a random seed.
package serve
