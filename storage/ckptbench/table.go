package ckptbench

import (
	"fmt"
	"io"
)

// WriteMarkdown prints the result as Markdown tables.
func (r *Result) WriteMarkdown(w io.Writer) error {
	p := &printer{w: w}
	p.printf("## ark bench ckpt\n\n")
	p.printf("| environment | |\n|---|---|\n")
	p.printf("| CPU | %s |\n| cores | %d |\n| GPU | %s |\n| OS | %s |\n| Go | %s |\n| commit | %s |\n",
		r.Env.CPU, r.Env.Cores, r.Env.GPU, r.Env.OS, r.Env.Go, r.Env.Commit)
	p.printf("| checkpoint | %.0f MiB in %d shards |\n| disk dir | %s |\n| rounds | %d (median reported) |\n\n",
		float64(r.SizeBytes)/(1<<20), r.Shards, r.Dir, r.Rounds)

	p.printf("| target | MB/s | of raw disk |\n|---|---:|---:|\n")
	p.printf("| raw fsync'd sequential write (one file) | %.0f | 100%% |\n", r.RawDiskMBps)
	p.printf("| raw fsync'd writes, one file per shard, 4 at once | %.0f | %.0f%% |\n", r.RawParallelMBps, 100*r.RawParallelMBps/r.RawDiskMBps)
	p.printf("| file:// checkpoint (4 shards at once) | %.0f | %.0f%% (%.0f%% of the parallel raw) |\n", r.FileMBps, 100*r.FileFrac, 100*r.FileFracPar)
	if r.S3MBps != nil {
		p.printf("| %s checkpoint | %.0f | %.0f%% |\n", r.S3URI, *r.S3MBps, 100**r.S3Frac)
	} else {
		p.printf("| s3:// checkpoint | not run (no --s3) | |\n")
	}
	if r.S3SignedMBps != nil {
		p.printf("| s3:// with payload signing | %.0f | %.0f%% |\n", *r.S3SignedMBps, 100**r.S3SignedMBps/r.RawDiskMBps)
	}
	p.printf("\n| training stall per checkpoint (file://) | ms |\n|---|---:|\n")
	p.printf("| synchronous save | %.1f |\n", r.SyncStallMs)
	p.printf("| async streaming (median; max %.1f) | %.1f |\n", r.AsyncStallMaxMs, r.AsyncStallMs)
	p.printf("| of which host-memory copy | %.1f |\n", r.AsyncCopyMs)
	p.printf("| of which waiting for the previous upload | %.1f |\n", r.AsyncWaitMs)
	p.printf("| async stall / sync stall | %.1f%% |\n", 100*r.StallFrac)
	p.printf("| background upload (median) | %.1f |\n", r.AsyncUploadMs)
	p.printf("| checkpoint interval | %.0f |\n", r.IntervalMs)
	return p.err
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}
