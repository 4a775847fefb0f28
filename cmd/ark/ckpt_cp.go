package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/storage/checkpoint"
)

// newCkptCpCmd is `ark ckpt cp URI STORE_URI`: download a checkpoint from a
// cluster's store, or upload one, with a progress bar on a terminal.
func newCkptCpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cp URI STORE_URI",
		Short: "Copy a checkpoint to another store (download or upload), checking every shard",
		Long: `Copies the checkpoint URI (STORE_URI/JOB/STEP) into STORE_URI under the same job
and step: from S3 to a local disk (file://) or back. Shards are copied as
stored (a sealed checkpoint stays sealed) and checked against the manifest's
size and SHA-256 on the way; the manifest is written last, so the copy exists
only once it is complete, and a failed copy leaves nothing behind. A store
that holds the checkpoint already is refused. On a terminal a progress bar
shows on stderr (none with -o json).`,
		Example: `  ark ckpt cp s3://ark/ckpt/default/ft-1/50 file:///tmp/ckpt
  ark ckpt cp file:///tmp/ckpt/ft-1/50 s3://ark-archive/ckpt -o json`,
		Args: exactArgs(2, "URI and STORE_URI"),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, ref, err := openCkptURI(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			dst, err := openCkptStore(cmd.Context(), args[1])
			if err != nil {
				return err
			}
			c, err := checkpoint.Open(cmd.Context(), src, ref, nil)
			if err != nil {
				return err
			}
			bar := newLiveLine(cmd.ErrOrStderr(), wantJSON(cmd), false)
			start := time.Now()
			err = checkpoint.Copy(cmd.Context(), c, dst, func(done, total int64) { bar.bar("copy", done, total) })
			bar.end(false)
			if err != nil {
				return err
			}
			el := time.Since(start)
			var bytes int64
			for _, sh := range c.Manifest.Shards {
				bytes += sh.StoredSize
			}
			to := checkpoint.JoinURI(args[1], ref)
			if wantJSON(cmd) {
				return printJSON(cmd.OutOrStdout(), map[string]any{"from": args[0], "to": to, "shards": len(c.Manifest.Shards), "bytes": bytes, "seconds": el.Seconds()})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "copied %s to %s: %d shards, %s in %s (%.0f MB/s)\n", args[0], to, len(c.Manifest.Shards),
				ckptBytes(bytes), el.Round(time.Millisecond), float64(bytes)/el.Seconds()/1e6)
			return nil
		},
	}
}
