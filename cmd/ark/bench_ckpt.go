package main

import (
	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/storage/ckptbench"
)

func init() { benchCommands = append(benchCommands, newBenchCkptCmd) }

// newBenchCkptCmd is `ark bench ckpt`: checkpoint bandwidth to file:// and
// s3:// against the raw disk, and the training stall of synchronous vs
// async checkpoints. The work is in storage/ckptbench.
func newBenchCkptCmd() *cobra.Command {
	var (
		cfg    ckptbench.Config
		size   string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "ckpt",
		Short: "Checkpoint MB/s (raw disk vs file:// vs s3://) and training stall (sync vs async)",
		Long: `Writes the same bytes as a raw fsync'd sequential file (the ceiling), then as a
checkpoint to file:// in the same directory and, with --s3, to an S3 server
(endpoint and keys from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION; the bucket is created if missing). Each is
measured --rounds times, interleaved, and the median reported in MB/s (10^6 B/s)
and as a fraction of raw disk. A training-loop simulation then reports the stall
per checkpoint of a synchronous save and of async streaming (copy to host
memory, upload in the background).`,
		Example: `  ark bench ckpt --size 128MiB
  ark bench ckpt --s3 s3://ark-bench/ckpt --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := ckptbench.ParseSize(size)
			if err != nil {
				return usagef("--size: %v", err)
			}
			cfg.Size = n
			if cfg.Shards < 1 || cfg.Rounds < 1 || cfg.Checkpoints < 1 {
				return usagef("--shards, --rounds and --checkpoints must be >= 1")
			}
			var end func()
			cfg.Log, end = benchProgress(cmd, asJSON)
			res, err := ckptbench.Run(cmd.Context(), cfg)
			end()
			if err != nil {
				return err
			}
			if out := cmd.Flag("output"); asJSON || (out != nil && out.Value.String() == "json") {
				return printJSON(cmd.OutOrStdout(), res)
			}
			return res.WriteMarkdown(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&size, "size", "512MiB", "checkpoint size (e.g. 64MiB, 1GiB)")
	f.IntVar(&cfg.Shards, "shards", 8, "shards (ranks) the checkpoint is split into")
	f.StringVar(&cfg.Dir, "dir", "", "directory on the disk to measure (default: a temporary directory)")
	f.StringVar(&cfg.S3URI, "s3", "", "also save to this S3 store, s3://BUCKET/PREFIX")
	f.BoolVar(&cfg.S3CompareSigning, "compare-signing", false, "with --s3, also measure with payload signing on")
	f.IntVar(&cfg.Rounds, "rounds", 3, "rounds of each bandwidth measurement (median reported)")
	f.IntVar(&cfg.Checkpoints, "checkpoints", 4, "checkpoints in the training-loop simulation")
	f.BoolVar(&asJSON, "json", false, "print one JSON object instead of a Markdown table")
	return cmd
}
