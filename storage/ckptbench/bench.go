package ckptbench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/ark-sched/ark/storage"
	"github.com/ark-sched/ark/storage/checkpoint"
	"github.com/ark-sched/ark/storage/filestore"
	"github.com/ark-sched/ark/storage/stores"
)

// Config describes a run.
type Config struct {
	// Size of the checkpoint in bytes. Default 512 MiB.
	Size int64
	// Shards the checkpoint is split into (ranks). Default 8.
	Shards int
	// Dir is where the raw write and the file:// store go (the "same
	// disk"). Default: a new temporary directory, removed afterwards.
	Dir string
	// S3URI, if set, adds the s3:// measurement (s3://BUCKET/PREFIX; the
	// endpoint and keys come from the environment). The bucket is created
	// if missing.
	S3URI string
	// S3CompareSigning adds a run with payload signing on, to show its cost.
	S3CompareSigning bool
	// Rounds of the bandwidth measurements, interleaved; the median is
	// reported. Default 3.
	Rounds int
	// Checkpoints in the training-loop simulation. Default 4.
	Checkpoints int
	// Log receives progress lines; nil for none.
	Log io.Writer
}

// Result is what `ark bench ckpt` prints. Bandwidths are in MB/s (10^6
// bytes per second); fractions are of RawDiskMBps.
type Result struct {
	Env         Env     `json:"env"`
	SizeBytes   int64   `json:"size_bytes"`
	Shards      int     `json:"shards"`
	Rounds      int     `json:"rounds"`
	Dir         string  `json:"dir"`
	RawDiskMBps float64 `json:"raw_disk_mbps"`
	// RawParallelMBps writes the shards as plain files, 4 at a time (as
	// file:// does), each fsync'd: the ceiling for file:// on a disk that
	// rewards parallel writes.
	RawParallelMBps float64 `json:"raw_parallel_mbps"`
	FileFracPar     float64 `json:"file_frac_of_raw_parallel"`
	FileMBps        float64 `json:"file_mbps"`
	FileFrac        float64 `json:"file_frac_of_raw"`

	S3URI         string   `json:"s3_uri,omitempty"`
	S3MBps        *float64 `json:"s3_mbps,omitempty"`
	S3Frac        *float64 `json:"s3_frac_of_raw,omitempty"`
	S3SignedMBps  *float64 `json:"s3_signed_mbps,omitempty"`
	S3PartSize    int64    `json:"s3_part_size,omitempty"`
	S3Concurrency int      `json:"s3_concurrency,omitempty"`

	Checkpoints     int     `json:"checkpoints"`
	IntervalMs      float64 `json:"interval_ms"`
	SyncStallMs     float64 `json:"sync_stall_ms"`
	AsyncStallMs    float64 `json:"async_stall_ms"`
	AsyncStallMaxMs float64 `json:"async_stall_max_ms"`
	AsyncCopyMs     float64 `json:"async_copy_ms"`
	AsyncWaitMs     float64 `json:"async_wait_ms"`
	AsyncUploadMs   float64 `json:"async_upload_ms"`
	StallFrac       float64 `json:"async_stall_frac_of_sync"`
}

func (c *Config) defaults() {
	if c.Size <= 0 {
		c.Size = 512 << 20
	}
	if c.Shards <= 0 {
		c.Shards = 8
	}
	if c.Rounds <= 0 {
		c.Rounds = 3
	}
	if c.Checkpoints <= 0 {
		c.Checkpoints = 4
	}
}

func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

// Run runs the benchmark.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "ark-bench-ckpt-")
		if err != nil {
			return nil, fmt.Errorf("bench ckpt: %w", err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	res := &Result{Env: DetectEnv(), SizeBytes: cfg.Size, Shards: cfg.Shards, Rounds: cfg.Rounds, Dir: dir, Checkpoints: cfg.Checkpoints}
	st := makeState("bench", cfg.Size, cfg.Shards)

	fs, err := filestore.Open(filepath.Join(dir, "store"))
	if err != nil {
		return nil, fmt.Errorf("bench ckpt: %w", err)
	}
	var s3s storage.Store
	if cfg.S3URI != "" {
		s3s, err = stores.Open(ctx, cfg.S3URI, stores.Options{CreateBucket: true})
		if err != nil {
			return nil, fmt.Errorf("bench ckpt: %w", err)
		}
		res.S3URI = cfg.S3URI
	}
	var signed storage.Store
	if cfg.S3URI != "" && cfg.S3CompareSigning {
		signed, err = stores.Open(ctx, withQuery(cfg.S3URI, "sign_payload=true"), stores.Options{})
		if err != nil {
			return nil, fmt.Errorf("bench ckpt: %w", err)
		}
	}

	var raw, rawPar, file, s3m, s3signed []float64
	for round := range cfg.Rounds {
		mbps, err := rawWrite(ctx, filepath.Join(dir, "raw.bin"), st)
		if err != nil {
			return nil, err
		}
		raw = append(raw, mbps)
		cfg.logf("round %d: raw disk %.0f MB/s", round+1, mbps)

		mbps, err = rawParallel(ctx, filepath.Join(dir, "rawpar"), st, saveConcurrency)
		if err != nil {
			return nil, err
		}
		rawPar = append(rawPar, mbps)
		cfg.logf("round %d: raw disk, %d files at once %.0f MB/s", round+1, saveConcurrency, mbps)

		mbps, err = saveOnce(ctx, fs, st, int64(round))
		if err != nil {
			return nil, fmt.Errorf("bench ckpt: file: %w", err)
		}
		file = append(file, mbps)
		cfg.logf("round %d: file:// %.0f MB/s", round+1, mbps)

		if s3s != nil {
			mbps, err = saveOnce(ctx, s3s, st, int64(round))
			if err != nil {
				return nil, fmt.Errorf("bench ckpt: s3: %w", err)
			}
			s3m = append(s3m, mbps)
			cfg.logf("round %d: s3:// %.0f MB/s", round+1, mbps)
		}
		if signed != nil {
			mbps, err = saveOnce(ctx, signed, st, int64(round))
			if err != nil {
				return nil, fmt.Errorf("bench ckpt: s3 signed: %w", err)
			}
			s3signed = append(s3signed, mbps)
			cfg.logf("round %d: s3:// signed payload %.0f MB/s", round+1, mbps)
		}
	}
	res.RawDiskMBps = median(raw)
	res.FileMBps = median(file)
	res.FileFrac = res.FileMBps / res.RawDiskMBps
	res.RawParallelMBps = median(rawPar)
	res.FileFracPar = res.FileMBps / res.RawParallelMBps
	if s3s != nil {
		m := median(s3m)
		f := m / res.RawDiskMBps
		res.S3MBps, res.S3Frac = &m, &f
		if ss, ok := s3s.(interface{ PartSizeConcurrency() (int64, int) }); ok {
			res.S3PartSize, res.S3Concurrency = ss.PartSizeConcurrency()
		}
	}
	if signed != nil {
		m := median(s3signed)
		res.S3SignedMBps = &m
	}

	if err := simulate(ctx, cfg, fs, st, res); err != nil {
		return nil, err
	}
	return res, nil
}

// makeState builds a checkpoint of size bytes in shards shards, each with
// a few tensors of non-trivial content (so nothing compresses or dedups).
func makeState(job string, size int64, shards int) *checkpoint.State {
	st := &checkpoint.State{Job: job, WorldSize: shards}
	per := size / int64(shards)
	for r := range shards {
		n := per
		if r == shards-1 {
			n = size - per*int64(shards-1)
		}
		sh := checkpoint.Shard{Rank: r}
		const tensors = 4
		for i := range tensors {
			tn := n / tensors
			if i == tensors-1 {
				tn = n - tn*(tensors-1)
			}
			data := make([]byte, tn)
			fill(data, uint64(r*tensors+i))
			sh.Tensors = append(sh.Tensors, checkpoint.Tensor{Name: fmt.Sprintf("rank%d.t%d", r, i), DType: "u8", Shape: []int64{tn}, Data: data})
		}
		st.Shards = append(st.Shards, sh)
	}
	return st
}

func fill(b []byte, seed uint64) {
	x := seed*0x9e3779b97f4a7c15 + 1
	for i := 0; i+8 <= len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		for j := range 8 {
			b[i+j] = byte(x >> (8 * j))
		}
	}
}

// rawWrite writes the state's bytes sequentially to one file with large
// writes, starting the disk write of each 8 MiB as it goes (the fastest
// single-stream pattern, which file:// uses too), fsyncs it, and returns
// MB/s. It is the ceiling the file backend is compared with.
func rawWrite(ctx context.Context, path string, st *checkpoint.State) (float64, error) {
	settle()
	start := time.Now()
	f, err := os.Create(path)
	if err != nil {
		return 0, fmt.Errorf("bench ckpt: raw: %w", err)
	}
	var n int64
	wb := filestore.WritebackWriter(f)
	for _, sh := range st.Shards {
		for _, t := range sh.Tensors {
			if err := ctx.Err(); err != nil {
				f.Close()
				return 0, err
			}
			w, err := wb.Write(t.Data)
			n += int64(w)
			if err != nil {
				f.Close()
				return 0, fmt.Errorf("bench ckpt: raw: %w", err)
			}
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, fmt.Errorf("bench ckpt: raw: %w", err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("bench ckpt: raw: %w", err)
	}
	el := time.Since(start)
	os.Remove(path)
	return float64(n) / el.Seconds() / 1e6, nil
}

// saveConcurrency is checkpoint.Save's default shard concurrency.
const saveConcurrency = 4

// rawParallel writes each shard to its own file, conc at a time, each
// fsync'd, and returns MB/s for the whole.
func rawParallel(ctx context.Context, dir string, st *checkpoint.State, conc int) (float64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("bench ckpt: raw parallel: %w", err)
	}
	defer os.RemoveAll(dir)
	settle()
	start := time.Now()
	sem := make(chan struct{}, conc)
	errs := make(chan error, len(st.Shards))
	for i, sh := range st.Shards {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errs <- writeFile(ctx, filepath.Join(dir, fmt.Sprint(i)), sh)
		}()
	}
	for range st.Shards {
		if err := <-errs; err != nil {
			return 0, fmt.Errorf("bench ckpt: raw parallel: %w", err)
		}
	}
	return float64(st.Bytes()) / time.Since(start).Seconds() / 1e6, nil
}

func writeFile(ctx context.Context, path string, sh checkpoint.Shard) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	wb := filestore.WritebackWriter(f)
	for _, t := range sh.Tensors {
		if err := ctx.Err(); err != nil {
			f.Close()
			return err
		}
		if _, err := wb.Write(t.Data); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// saveOnce saves the state as step and returns MB/s, then deletes it.
func saveOnce(ctx context.Context, s storage.Store, st *checkpoint.State, step int64) (float64, error) {
	settle()
	st.Step = step
	start := time.Now()
	if _, err := checkpoint.Save(ctx, s, st, checkpoint.SaveOptions{}); err != nil {
		return 0, err
	}
	el := time.Since(start)
	if err := checkpoint.Delete(ctx, s, st.Ref()); err != nil {
		return 0, err
	}
	return float64(st.Bytes()) / el.Seconds() / 1e6, nil
}

// settle flushes dirty pages left by the previous measurement, so each
// starts from a clean page cache, and gives the disk a moment.
func settle() {
	syscall.Sync()
	time.Sleep(200 * time.Millisecond)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func withQuery(uri, q string) string {
	for _, c := range uri {
		if c == '?' {
			return uri + "&" + q
		}
	}
	return uri + "?" + q
}

// ParseSize parses a byte size: a number with an optional unit B, KB, MB,
// GB (powers of 1000) or KiB, MiB, GiB (powers of 1024), e.g. 512MiB.
func ParseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1},
	}
	num, mult := s, int64(1)
	for _, u := range units {
		if len(s) > len(u.suffix) && s[len(s)-len(u.suffix):] == u.suffix {
			num, mult = s[:len(s)-len(u.suffix)], u.mult
			break
		}
	}
	var n int64
	if _, err := fmt.Sscanf(num, "%d", &n); err != nil || fmt.Sprint(n) != num || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number with an optional unit (512MiB, 1GB)", s)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return n * mult, nil
}
