package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/storage"
	"github.com/ark-sched/ark/storage/checkpoint"
	"github.com/ark-sched/ark/storage/stores"
)

func init() {
	extraCommands = append(extraCommands, func(g *globals) *cobra.Command { return newCkptCmd(g) })
}

// newCkptCmd is `ark ckpt list|show|verify|cp|rm`: inspect and manage the
// checkpoints in an object store. A checkpoint URI is STORE_URI/JOB/STEP,
// e.g. file:///var/lib/ark/ckpt/ft-1/50 or s3://bucket/ckpt/ft-1/50; S3
// endpoint and keys come from the AWS_* environment.
func newCkptCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ckpt",
		Short: "List, show, verify, copy and remove checkpoints (file:// or s3:// stores)",
		Long: `Checkpoints live in an object store as STORE_URI/JOB/STEP: shards plus a
MANIFEST.json written last. A checkpoint without a valid manifest does not
exist. S3 stores take their endpoint, region and keys from AWS_ENDPOINT_URL,
AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the shared
credentials file).`,
	}
	cmd.AddCommand(newCkptListCmd(g), newCkptShowCmd(), newCkptVerifyCmd(), newCkptCpCmd(), newCkptRmCmd())
	return cmd
}

func wantJSON(cmd *cobra.Command) bool {
	f := cmd.Flag("output")
	return f != nil && f.Value.String() == "json"
}

func openCkptStore(ctx context.Context, uri string) (storage.Store, error) {
	s, err := stores.Open(ctx, uri, stores.Options{})
	if err != nil {
		return nil, usageError{err}
	}
	return s, nil
}

// openCkptURI opens the store of STORE_URI/JOB/STEP.
func openCkptURI(ctx context.Context, uri string) (storage.Store, checkpoint.Ref, error) {
	storeURI, ref, err := checkpoint.SplitURI(uri)
	if err != nil {
		return nil, ref, usageError{err}
	}
	s, err := openCkptStore(ctx, storeURI)
	return s, ref, err
}

func newCkptListCmd(g *globals) *cobra.Command {
	var store string
	cmd := &cobra.Command{
		Use:   "list JOB | STORE_URI/JOB",
		Short: "List a job's checkpoints, complete or not",
		Long: `Lists a job's checkpoints. Given a job of the cluster (an ID, a unique
prefix of one, or a name), it asks the servers (--addr) where the job
checkpoints; --store or a STORE_URI/JOB argument looks in a store instead.`,
		Example: `  ark ckpt list ft-1a2b3c
  ark ckpt list ft-1 --store s3://ark/ckpt/default
  ark ckpt list file:///var/lib/ark/ckpt/default/ft-1`,
		Args: exactArgs(1, "JOB"),
		RunE: func(cmd *cobra.Command, args []string) error {
			job := args[0]
			if i := strings.LastIndex(job, "/"); strings.Contains(job, "://") && i >= 0 {
				store, job = job[:i], job[i+1:]
			}
			if store == "" {
				c, err := g.client()
				if err != nil {
					return usageError{err}
				}
				if store, job, err = clusterCheckpointStore(cmd.Context(), c, job); err != nil {
					return fmt.Errorf("%w (or give --store, ARK_CHECKPOINT_URI or a STORE_URI/JOB argument)", err)
				}
			}
			if !checkpoint.ValidName(job) {
				return usagef("job %q: not a valid name", job)
			}
			s, err := openCkptStore(cmd.Context(), store)
			if err != nil {
				return err
			}
			infos, err := checkpoint.List(cmd.Context(), s, job)
			if err != nil {
				return err
			}
			type row struct {
				Job      string    `json:"job"`
				Step     int64     `json:"step"`
				Complete bool      `json:"complete"`
				Objects  int       `json:"objects"`
				Bytes    int64     `json:"bytes"`
				Modified time.Time `json:"modified"`
				URI      string    `json:"uri"`
			}
			rows := []row{}
			for _, in := range infos {
				rows = append(rows, row{in.Job, in.Step, in.Complete, in.Objects, in.Bytes, in.Modified, checkpoint.JoinURI(store, in.Ref)})
			}
			if wantJSON(cmd) {
				return printJSON(cmd.OutOrStdout(), rows)
			}
			if len(rows) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "no checkpoints of %s in %s\n", job, store)
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STEP\tSTATE\tOBJECTS\tSIZE\tMODIFIED\tURI")
			for _, r := range rows {
				state := "complete"
				if !r.Complete {
					state = "incomplete"
				}
				fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\n", r.Step, state, r.Objects, ckptBytes(r.Bytes),
					r.Modified.Local().Format(time.DateTime), r.URI)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&store, "store", os.Getenv("ARK_CHECKPOINT_URI"), "checkpoint store URI, file://DIR or s3://BUCKET/PREFIX (env ARK_CHECKPOINT_URI)")
	return cmd
}

func newCkptShowCmd() *cobra.Command {
	var tensors bool
	cmd := &cobra.Command{
		Use:     "show URI",
		Short:   "Show a checkpoint's manifest",
		Example: "  ark ckpt show s3://ark/ckpt/ft-1/50",
		Args:    exactArgs(1, "URI"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, ref, err := openCkptURI(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			c, err := checkpoint.Open(cmd.Context(), s, ref, nil)
			if err != nil {
				return err
			}
			m := c.Manifest
			if wantJSON(cmd) {
				return printJSON(cmd.OutOrStdout(), m)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Checkpoint  %s\n", args[0])
			fmt.Fprintf(w, "Job         %s, step %d, world size %d\n", m.Job, m.Step, m.WorldSize)
			fmt.Fprintf(w, "Created     %s\n", m.Created.Local().Format(time.DateTime))
			fmt.Fprintf(w, "Format      v%d\n", m.FormatVersion)
			if m.Namespace != "" {
				fmt.Fprintf(w, "Namespace   %s\n", m.Namespace)
			}
			if e := m.Encryption; e != nil {
				fmt.Fprintf(w, "Encryption  %s, key %s, %s chunks\n", e.Algorithm, e.KeyID, ckptBytes(int64(e.ChunkSize)))
			} else {
				fmt.Fprintf(w, "Encryption  none\n")
			}
			fmt.Fprintf(w, "Size        %s in %d shards, %d tensors\n", ckptBytes(m.Bytes()), len(m.Shards), len(m.Tensors))
			for k, v := range m.Metadata {
				fmt.Fprintf(w, "Metadata    %s=%s\n", k, v)
			}
			fmt.Fprintln(w)
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SHARD\tRANK\tSIZE\tSTORED\tSHA256")
			for _, sh := range m.Shards {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", sh.Name, sh.Rank, ckptBytes(sh.Size), ckptBytes(sh.StoredSize), sh.SHA256)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if tensors {
				fmt.Fprintln(w)
				tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TENSOR\tSHARD\tOFFSET\tSIZE\tDTYPE\tSHAPE")
				for _, t := range m.Tensors {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%v\n", t.Name, t.Shard, t.Offset, ckptBytes(t.Size), t.DType, t.Shape)
				}
				return tw.Flush()
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&tensors, "tensors", false, "also list the tensor index")
	return cmd
}

func newCkptVerifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "verify URI",
		Short:   "Read every shard and check its size and SHA-256 against the manifest",
		Long:    "Reads every shard of the checkpoint and checks its size and SHA-256 against the\nmanifest (no key is needed for encrypted checkpoints: checksums cover the stored\nbytes). Exits 1 naming each corrupt or missing shard.",
		Example: "  ark ckpt verify file:///var/lib/ark/ckpt/ft-1/50",
		Args:    exactArgs(1, "URI"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, ref, err := openCkptURI(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			c, err := checkpoint.Open(cmd.Context(), s, ref, nil)
			if err != nil {
				return err
			}
			bar := newLiveLine(cmd.ErrOrStderr(), wantJSON(cmd), false)
			start := time.Now()
			results, verr := c.Verify(cmd.Context(), func(done, total int64) { bar.bar("verify", done, total) })
			bar.end(false)
			el := time.Since(start)
			if wantJSON(cmd) {
				type shard struct {
					Name  string `json:"name"`
					Bytes int64  `json:"bytes"`
					Error string `json:"error,omitempty"`
				}
				out := struct {
					URI     string  `json:"uri"`
					OK      bool    `json:"ok"`
					Seconds float64 `json:"seconds"`
					Shards  []shard `json:"shards"`
				}{URI: args[0], OK: verr == nil, Seconds: el.Seconds()}
				for _, r := range results {
					sh := shard{Name: r.Name, Bytes: r.Bytes}
					if r.Err != nil {
						sh.Error = r.Err.Error()
					}
					out.Shards = append(out.Shards, sh)
				}
				if err := printJSON(cmd.OutOrStdout(), out); err != nil {
					return err
				}
			} else {
				var total int64
				for _, r := range results {
					status := "ok"
					if r.Err != nil {
						status = "FAILED: " + r.Err.Error()
					}
					total += r.Bytes
					fmt.Fprintf(cmd.OutOrStdout(), "%-24s %10s  %s\n", r.Name, ckptBytes(r.Bytes), status)
				}
				if verr == nil {
					fmt.Fprintf(cmd.OutOrStdout(), "verified %d shards, %s in %s (%.0f MB/s)\n", len(results), ckptBytes(total),
						el.Round(time.Millisecond), float64(total)/el.Seconds()/1e6)
				}
			}
			if verr != nil {
				return fmt.Errorf("checkpoint %s does not verify: %w", args[0], verr)
			}
			return nil
		},
	}
}

func newCkptRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "rm URI",
		Short:   "Delete a checkpoint (its manifest first, then its shards)",
		Example: "  ark ckpt rm s3://ark/ckpt/ft-1/50",
		Args:    exactArgs(1, "URI"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, ref, err := openCkptURI(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			objs, err := s.List(cmd.Context(), ref.Prefix())
			if err != nil {
				return err
			}
			if len(objs) == 0 {
				return fmt.Errorf("checkpoint %s: %w", args[0], checkpoint.ErrNotFound)
			}
			if err := checkpoint.Delete(cmd.Context(), s, ref); err != nil {
				return err
			}
			if wantJSON(cmd) {
				return printJSON(cmd.OutOrStdout(), map[string]any{"deleted": args[0], "objects": len(objs)})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s (%d objects)\n", args[0], len(objs))
			return nil
		},
	}
}

func ckptBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
