package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// LoadConfig is one row of a serving benchmark: closed-loop clients (each
// sends its next request when the last one ends), or Poisson arrivals at
// Rate with at most Concurrency in flight, asking for fixed prompt and
// output lengths, each request naming one of Models uniformly at random
// (seeded), streamed so the time to the first token is seen.
type LoadConfig struct {
	URL          string   // the server, http://HOST:PORT
	Models       []string // chosen uniformly per request
	Concurrency  int
	Rate         float64 // requests/s of Poisson arrivals; 0: closed loop
	Requests     int     // in all; default 4 x Concurrency
	PromptBytes  int     // default 32
	OutputTokens int     // default 64
	Seed         uint64
	Timeout      time.Duration // per request; default 2 minutes
}

// LoadResult has the figures of vLLM's serving benchmark
// (benchmark_serving.py), so rows compare directly.
type LoadResult struct {
	Concurrency       int     `json:"concurrency"`
	Requests          int     `json:"requests"`
	Failed            int     `json:"failed"`
	DurationSec       float64 `json:"duration_s"`
	RequestThroughput float64 `json:"request_throughput"` // completed requests/s
	OutputThroughput  float64 `json:"output_throughput"`  // output tokens/s
	TTFTMsP50         float64 `json:"ttft_ms_p50"`
	TTFTMsP99         float64 `json:"ttft_ms_p99"`
	TPOTMsP50         float64 `json:"tpot_ms_p50"` // time per output token after the first
	TPOTMsP99         float64 `json:"tpot_ms_p99"`
	FirstError        string  `json:"first_error,omitempty"`
}

// The load generator of `ark bench serve`
// (requests drawn from the seed, TTFT at the first chunk
// with text, the request's end at data: [DONE], its tokens from the usage
// chunk), from a client that costs little per token, since it shares the
// machine's cores with the server it measures (vLLM's benchmark client
// is a pool of kept-alive connections and a streamed parse per chunk):
//
//   - each client reads its streams through one reused bufio.Reader, a
//     line at a time with no copy, and parses a chunk with scanChunk, a
//     walk over the bytes that decodes only the first choice's text, the
//     usage and an error, instead of json.Unmarshal's reflection;
//   - a response is read to its end (the chunked body's last, empty
//     chunk) before it is closed, so net/http keeps its connection for
//     the client's next request: an earlier client closed it at [DONE],
//     before the server's end of the body, and net/http closes a
//     connection whose body was not read to its end, so each request
//     dialled a new one;
//   - the bodies are made before the clock starts, and the clients are
//     Concurrency goroutines for the whole row in both modes (Poisson
//     arrivals are handed to whichever is free, which caps those in
//     flight as a semaphore would).

// RunLoad runs one benchmark row against the server at c.URL.
func RunLoad(ctx context.Context, c LoadConfig) (LoadResult, error) {
	if c.Concurrency < 1 || len(c.Models) == 0 || c.URL == "" {
		return LoadResult{}, fmt.Errorf("load: need a URL, models and concurrency >= 1")
	}
	if c.Requests <= 0 {
		c.Requests = 4 * c.Concurrency
	}
	if c.PromptBytes <= 0 {
		c.PromptBytes = 32
	}
	if c.OutputTokens <= 0 {
		c.OutputTokens = 64
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Minute
	}
	rng := rand.New(rand.NewPCG(c.Seed, 0x6c6f6164))
	todo, err := loadRequests(rng, c)
	if err != nil {
		return LoadResult{}, err
	}
	tr := &http.Transport{MaxIdleConns: c.Concurrency, MaxIdleConnsPerHost: c.Concurrency, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var (
		mu         sync.Mutex
		ttft, tpot []float64
		tokens     int
		res        = LoadResult{Concurrency: c.Concurrency, Requests: c.Requests}
	)
	record := func(w loadRequest, first, total time.Duration, n int, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil || n != c.OutputTokens {
			res.Failed++
			if res.FirstError == "" {
				if err == nil {
					err = fmt.Errorf("%d tokens, want %d", n, c.OutputTokens)
				}
				res.FirstError = fmt.Sprintf("%s: %v", w.model, err)
			}
			return
		}
		tokens += n
		ttft = append(ttft, loadMs(first))
		if n > 1 {
			tpot = append(tpot, loadMs(total-first)/float64(n-1))
		}
	}
	// Closed loop: every request is queued and each client takes the
	// next when its last ends. Poisson: the arrivals are handed over one
	// by one, each waiting for a free client.
	var jobs chan loadRequest
	if c.Rate <= 0 {
		jobs = make(chan loadRequest, len(todo))
		for _, w := range todo {
			jobs <- w
		}
		close(jobs)
	} else {
		jobs = make(chan loadRequest)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range c.Concurrency {
		wg.Go(func() {
			lc := &loadClient{url: c.URL + "/v1/completions", client: client, timeout: c.Timeout, br: bufio.NewReaderSize(nil, 4096)}
			for w := range jobs {
				first, total, n, err := lc.stream(ctx, w.body)
				record(w, first, total, n, err)
			}
		})
	}
	if c.Rate > 0 {
		next := start
		for _, w := range todo {
			next = next.Add(time.Duration(rng.ExpFloat64() / c.Rate * float64(time.Second)))
			time.Sleep(time.Until(next))
			jobs <- w
		}
		close(jobs)
	}
	wg.Wait()
	d := time.Since(start).Seconds()
	res.DurationSec = d
	res.RequestThroughput = float64(c.Requests-res.Failed) / d
	res.OutputThroughput = float64(tokens) / d
	res.TTFTMsP50, res.TTFTMsP99 = loadPercentile(ttft, 50), loadPercentile(ttft, 99)
	res.TPOTMsP50, res.TPOTMsP99 = loadPercentile(tpot, 50), loadPercentile(tpot, 99)
	return res, ctx.Err()
}

// loadRequest is one request of a row: its model and its JSON body.
type loadRequest struct {
	model string
	body  []byte
}

// loadRequests draws every request's model and prompt from rng, as
// RunLoad does (the same draws, so a row asks the same of either
// client whatever the timing; Poisson gaps are drawn after them, as
// there), and encodes their bodies.
func loadRequests(rng *rand.Rand, c LoadConfig) ([]loadRequest, error) {
	const words = "the king my lord of a sweet love in thy heart and night day "
	todo := make([]loadRequest, c.Requests)
	for k := range todo {
		var p strings.Builder
		for p.Len() < c.PromptBytes {
			i := rng.IntN(len(words) - 8)
			p.WriteString(words[i : i+1+rng.IntN(7)])
		}
		model := c.Models[rng.IntN(len(c.Models))]
		body, err := json.Marshal(map[string]any{
			"model": model, "prompt": p.String()[:c.PromptBytes], "max_tokens": c.OutputTokens, "temperature": 0,
			"stream": true, "stream_options": map[string]bool{"include_usage": true},
		})
		if err != nil {
			return nil, err
		}
		todo[k] = loadRequest{model, body}
	}
	return todo, nil
}

func loadMs(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// loadPercentile is the nearest-rank percentile of xs (0 for none), as
// RunLoad computes it.
func loadPercentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(len(s)-1, max(0, i))]
}

// loadClient is one closed-loop client: its requests run one after
// another on one kept-alive connection, read through one buffer.
type loadClient struct {
	url     string
	client  *http.Client
	timeout time.Duration
	br      *bufio.Reader
	long    []byte // a line longer than br's buffer, put together
}

// maxLoadLine bounds one event's line (a chunk is a token or a held back
// stop string; an error event a message).
const maxLoadLine = 1 << 20

// stream sends one streamed completion and returns the time to its first
// text, to its data: [DONE], and the completion tokens its usage chunk
// counted.
func (lc *loadClient) stream(ctx context.Context, body []byte) (first, total time.Duration, tokens int, err error) {
	ctx, cancel := context.WithTimeout(ctx, lc.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, lc.url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := lc.client.Do(req)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return 0, 0, 0, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	lc.br.Reset(resp.Body)
	defer lc.br.Reset(nil) // drop the body
	for {
		line, err := lc.line()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("stream ended without [DONE]")
			}
			return 0, 0, 0, err
		}
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		if string(data) == "[DONE]" {
			total = time.Since(start)
			// Read the body's end, so the connection is kept for the
			// next request (the server sends it as the handler returns).
			if _, err := io.Copy(io.Discard, lc.br); err != nil {
				return 0, 0, 0, fmt.Errorf("after [DONE]: %w", err)
			}
			return first, total, tokens, nil
		}
		ch, err := scanChunk(data)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("bad event %.200q: %w", data, err)
		}
		if ch.err != "" {
			return 0, 0, 0, fmt.Errorf("error event: %s", ch.err)
		}
		if first == 0 && ch.text {
			first = time.Since(start)
		}
		if ch.usage {
			tokens = ch.completionTokens
		}
	}
}

// line is the next line of the stream without its \n (or \r\n), valid
// until the next call.
func (lc *loadClient) line() ([]byte, error) {
	line, err := lc.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		lc.long = append(lc.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) && len(lc.long) <= maxLoadLine {
			line, err = lc.br.ReadSlice('\n')
			lc.long = append(lc.long, line...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("an event longer than %d bytes", maxLoadLine)
		}
		line = lc.long
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	return bytes.TrimSuffix(line, []byte("\r")), nil
}
