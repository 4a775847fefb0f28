package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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

// RunLoad runs one benchmark row against a server.
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
	// Every request's model and prompt are drawn up front from the seed,
	// so a row asks the same whatever the timing.
	rng := rand.New(rand.NewPCG(c.Seed, 0x6c6f6164))
	const words = "the king my lord of a sweet love in thy heart and night day "
	type work struct{ model, prompt string }
	todo := make(chan work, c.Requests)
	for range c.Requests {
		var p strings.Builder
		for p.Len() < c.PromptBytes {
			i := rng.IntN(len(words) - 8)
			p.WriteString(words[i : i+1+rng.IntN(7)])
		}
		todo <- work{c.Models[rng.IntN(len(c.Models))], p.String()[:c.PromptBytes]}
	}
	close(todo)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.Concurrency}}
	var (
		mu         sync.Mutex
		ttft, tpot []float64
		tokens     int
		res        = LoadResult{Concurrency: c.Concurrency, Requests: c.Requests}
	)
	one := func(w work) {
		first, total, n, err := streamOne(ctx, client, c, w.model, w.prompt)
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
		ttft = append(ttft, ms(first))
		if n > 1 {
			tpot = append(tpot, ms(total-first)/float64(n-1))
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	if c.Rate > 0 { // Poisson arrivals, seeded gaps, at most Concurrency in flight
		inFlight := make(chan struct{}, c.Concurrency)
		next := start
		for w := range todo {
			next = next.Add(time.Duration(rng.ExpFloat64() / c.Rate * float64(time.Second)))
			time.Sleep(time.Until(next))
			inFlight <- struct{}{}
			wg.Go(func() {
				defer func() { <-inFlight }()
				one(w)
			})
		}
	} else {
		for range c.Concurrency {
			wg.Go(func() {
				for w := range todo {
					one(w)
				}
			})
		}
	}
	wg.Wait()
	d := time.Since(start).Seconds()
	res.DurationSec = d
	res.RequestThroughput = float64(c.Requests-res.Failed) / d
	res.OutputThroughput = float64(tokens) / d
	res.TTFTMsP50, res.TTFTMsP99 = percentile(ttft, 50), percentile(ttft, 99)
	res.TPOTMsP50, res.TPOTMsP99 = percentile(tpot, 50), percentile(tpot, 99)
	return res, ctx.Err()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// percentile is the nearest-rank percentile of xs (0 for none).
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(len(s)-1, max(0, i))]
}

// streamOne sends one streamed completion and returns the time to its
// first text, to its end, and the completion tokens the server counted.
func streamOne(ctx context.Context, client *http.Client, c LoadConfig, model, prompt string) (first, total time.Duration, tokens int, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	body, _ := json.Marshal(map[string]any{
		"model": model, "prompt": prompt, "max_tokens": c.OutputTokens, "temperature": 0,
		"stream": true, "stream_options": map[string]bool{"include_usage": true},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+"/v1/completions", bytes.NewReader(body))
	if err != nil {
		return 0, 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return 0, 0, 0, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			return first, time.Since(start), tokens, nil
		}
		var chunk struct {
			Choices []struct {
				Text string `json:"text"`
			} `json:"choices"`
			Usage *usage    `json:"usage"`
			Error *apiError `json:"error"`
		}
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			return 0, 0, 0, fmt.Errorf("bad event %q: %w", data, err)
		}
		if chunk.Error != nil {
			return 0, 0, 0, fmt.Errorf("error event: %s", chunk.Error.Message)
		}
		if first == 0 && len(chunk.Choices) > 0 && chunk.Choices[0].Text != "" {
			first = time.Since(start)
		}
		if chunk.Usage != nil {
			tokens = chunk.Usage.CompletionTokens
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, 0, err
	}
	return 0, 0, 0, fmt.Errorf("stream ended without [DONE]")
}
