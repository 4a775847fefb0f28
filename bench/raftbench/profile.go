package raftbench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/ark-sched/ark/scheduler/api/client"
)

// profileLevel takes CPU profiles of the three servers (their
// /debug/pprof/profile; the file name says which one led) and of this
// process, the clients, for one load level, so that a run shows where
// each submission's CPU goes on both ends. It returns a function that
// waits for the profiles once the level is over.
func (c *cluster) profileLevel(ctx context.Context, dir string, clients int, d time.Duration, log io.Writer) func() {
	if dir == "" {
		return func() {}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(log, "  profiles: %v\n", err)
		return func() {}
	}
	secs := max(int(d/time.Second), 1)
	var wg sync.WaitGroup
	for _, s := range c.servers {
		role := "follower"
		cl, _ := client.New(s.http)
		rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		if self, err := cl.ServerSelf(rctx); err == nil && self.Leader == self.Name {
			role = "leader"
		}
		cancel()
		path := filepath.Join(dir, fmt.Sprintf("c%d-%s-%s.pprof", clients, s.name, role))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = SaveURL(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.http, secs), path, log)
		}()
	}
	path := filepath.Join(dir, fmt.Sprintf("c%d-client.pprof", clients))
	f, err := os.Create(path)
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
			f = nil
		}
	}
	if err != nil {
		fmt.Fprintf(log, "  profile %s: %v\n", filepath.Base(path), err)
	}
	return func() {
		if f != nil {
			pprof.StopCPUProfile()
			f.Close()
			fmt.Fprintf(log, "  wrote %s\n", path)
		}
		wg.Wait()
	}
}

// SaveURL fetches url into path, saying in log what it wrote or why not
// (a profile or metrics page is context for a benchmark, not its result),
// and returns why not: a caller whose log is off (--json) can report it.
func SaveURL(ctx context.Context, url, path string, log io.Writer) error {
	err := saveURL(ctx, url, path)
	if err != nil {
		fmt.Fprintf(log, "  profile %s: %v\n", filepath.Base(path), err)
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	fmt.Fprintf(log, "  wrote %s\n", path)
	return nil
}

func saveURL(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, resp.Body)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
