package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/storage/checkpoint"
)

// ark model: the model catalog (models, versions, lineage, evaluations).
// A model is named NAME, a version NAME@V (NAME alone: the newest); jobs
// name them as model://NAME[@V] where they would name a checkpoint.

func init() {
	extraCommands = append(extraCommands, newModelCmd)
}

func newModelCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "The model catalog: models, versions, lineage and evaluation results",
		Long: `Models and their versions are cluster state, owned by a namespace (--namespace,
default "default"); a public model may be read by every namespace. A finetune job
with output: {model: NAME} registers its result as a new version when it
succeeds, with its lineage (parent version, job, data, method, final loss); jobs
name versions as model://NAME@VERSION (or model://NAME for the newest) wherever
they take a checkpoint (task.builtin.base, an eval job's candidates, adapters).`,
	}
	var ns string
	cmd.PersistentFlags().StringVarP(&ns, "namespace", "n", "", `the models' namespace (default "default"; list: every namespace the token reads)`)
	cmd.AddCommand(newModelListCmd(g, &ns), newModelShowCmd(g, &ns), newModelVersionsCmd(g, &ns),
		newModelLineageCmd(g, &ns), newModelRegisterCmd(g, &ns), newModelRmCmd(g, &ns), newModelCompareCmd(g, &ns),
		newModelEvalRecordCmd(g, &ns), newModelImportCmd(g, &ns))
	return cmd
}

func newModelImportCmd(g *globals, ns *string) *cobra.Command {
	var (
		out, name, description, license string
		public                          bool
	)
	cmd := &cobra.Command{
		Use:   "import DIR --out STORE_URI [--name NAME]",
		Short: "Import a GPT-2 in the Hugging Face layout as an Ark checkpoint (and register it)",
		Long: `Reads a GPT-2 in the Hugging Face layout from DIR (config.json, model.safetensors,
and tokenizer.json or vocab.json + merges.txt) and writes it, with its byte-level BPE
tokenizer, as an Ark checkpoint at STORE_URI (file:// or s3://, holding no checkpoint
yet). Train, eval and serve then take it like Ark's own checkpoints. With --name the
checkpoint is registered in the catalog as a new version of NAME (method imported),
so jobs can name it model://NAME. docs/import.md has the details.`,
		Example: `  ark model import ./gpt2 --out file:///var/lib/ark/models/gpt2 --name gpt2 --license MIT --public
  ark task generate --ckpt file:///var/lib/ark/models/gpt2 --prompt "Hello" --temperature 0 --tokens 20`,
		Args: exactArgs(1, "DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if name != "" {
				if _, err := parseRef(name); err != nil {
					return err
				}
			}
			w := cmd.OutOrStdout()
			if g.json() {
				w = io.Discard
			}
			res, err := modelImport(cmd.Context(), []string{args[0], "--out", out}, w)
			if err != nil {
				return err
			}
			result := map[string]any{"uri": res.URI, "params": res.Params, "config": res.Config, "tokens": res.Tokens}
			if name != "" {
				c, err := g.client()
				if err != nil {
					return usageError{err}
				}
				req := api.ModelRegisterRequest{Name: name, Namespace: *ns, Description: description, License: license,
					Provider: res.Model, Arch: api.ModelArch{Family: "gpt2", Params: int64(res.Params)}, URI: res.URI,
					Lineage: &api.Lineage{Method: api.MethodImported, Parent: "file://" + absPath(args[0])}}
				if cmd.Flags().Changed("public") {
					req.Public = &public
				}
				resp, err := c.RegisterModel(cmd.Context(), req)
				if err != nil {
					return fmt.Errorf("the checkpoint is written (%s), but registering it failed: %w", res.URI, err)
				}
				result["model"], result["version"] = resp.Name, resp.Version
				fmt.Fprintf(w, "registered %s@%d in namespace %s (jobs name it model://%s@%d)\n", resp.Name, resp.Version, resp.Namespace, resp.Name, resp.Version)
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), result)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "where to write the checkpoint: STORE_URI (file:// or s3://)")
	f.StringVar(&name, "name", "", "register the checkpoint in the catalog as a version of this model")
	f.StringVar(&description, "description", "", "with --name: what the model is")
	f.StringVar(&license, "license", "", "with --name: its license")
	f.BoolVar(&public, "public", false, "with --name: every namespace may read the model")
	return cmd
}

// absPath is p made absolute, or p when that fails.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// parseRef reads NAME[@V] from the command line.
func parseRef(s string) (spec.ModelRef, error) {
	r, err := spec.ParseModelRef(s)
	if err != nil {
		return r, usageError{err}
	}
	return r, nil
}

// modelOf reads NAME[@V] from the command line and fetches the model.
func modelOf(ctx context.Context, g *globals, ns, arg string) (spec.ModelRef, *client.Client, *api.Model, error) {
	r, err := parseRef(arg)
	if err != nil {
		return r, nil, nil, err
	}
	c, err := g.client()
	if err != nil {
		return r, nil, nil, usageError{err}
	}
	m, err := c.Model(ctx, ns, r.Name)
	return r, c, m, err
}

// modelVersion fetches a model and the version a reference names.
func modelVersion(ctx context.Context, c *client.Client, ns string, r spec.ModelRef) (*api.Model, *api.ModelVersion, error) {
	m, err := c.Model(ctx, ns, r.Name)
	if err != nil {
		return nil, nil, err
	}
	if len(m.Versions) == 0 {
		return m, nil, fmt.Errorf("model %s has no versions", m.Name)
	}
	if r.Version == 0 {
		return m, &m.Versions[len(m.Versions)-1], nil
	}
	for i := range m.Versions {
		if m.Versions[i].Version == r.Version {
			return m, &m.Versions[i], nil
		}
	}
	return m, nil, fmt.Errorf("model %s has no version %d (its versions: %s)", m.Name, r.Version, versionList(m))
}

func versionList(m *api.Model) string {
	var vs []string
	for _, v := range m.Versions {
		vs = append(vs, strconv.Itoa(v.Version))
	}
	if len(vs) == 0 {
		return "none"
	}
	return strings.Join(vs, ", ")
}

// kindOf says what a version is: base, full fine-tune, LoRA adapter.
func kindOf(v *api.ModelVersion) string {
	switch {
	case v.Adapter && v.Lineage != nil && v.Lineage.Rank > 0:
		return fmt.Sprintf("lora r%d", v.Lineage.Rank)
	case v.Adapter:
		return "lora"
	case v.Lineage == nil || v.Lineage.Method == "":
		return "base"
	case v.Lineage.Method == api.MethodFull && v.Lineage.Parent != "":
		return "fine-tune"
	}
	return v.Lineage.Method
}

func lossText(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.4f", *p)
}

func newModelListCmd(g *globals, ns *string) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the models the token may read",
		Example: `  ark model list
  ark model list -n nlp -o json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			ms, err := c.Models(cmd.Context(), *ns)
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), ms)
			}
			if len(ms) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no models (register one: ark model register NAME --uri CKPT --arch gpt-tiny)")
				return nil
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NAME\tNAMESPACE\tARCH\tVERSIONS\tLATEST\tPUBLIC\tDESCRIPTION")
			for _, m := range ms {
				latest := "-"
				if n := len(m.Versions); n > 0 {
					latest = fmt.Sprintf("%d (%s)", m.Versions[n-1].Version, kindOf(&m.Versions[n-1]))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%v\t%s\n", m.Name, m.Namespace, orDash(m.Arch.Preset), len(m.Versions), latest, m.Public, m.Description)
			}
			return tw.Flush()
		},
	}
}

func newModelShowCmd(g *globals, ns *string) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a model and its versions",
		Example: `  ark model show shakespeare
  ark model show shakespeare -o json`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, _, m, err := modelOf(cmd.Context(), g, *ns, args[0])
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), m)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Name         %s\n", m.Name)
			fmt.Fprintf(w, "Namespace    %s\n", m.Namespace)
			fmt.Fprintf(w, "Public       %v\n", m.Public)
			fmt.Fprintf(w, "Architecture %s\n", orDash(strings.Trim(m.Arch.Family+" "+m.Arch.Preset, " ")))
			for _, f := range [][2]string{{"Description", m.Description}, {"Provider", m.Provider}, {"License", m.License}} {
				if f[1] != "" {
					fmt.Fprintf(w, "%-12s %s\n", f[0], f[1])
				}
			}
			fmt.Fprintln(w)
			return printVersions(w, m)
		},
	}
}

func printVersions(w io.Writer, m *api.Model) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "VERSION\tKIND\tPARENT\tJOB\tSTEPS\tFINAL LOSS\tEVALS\tCHECKPOINT")
	for i := range m.Versions {
		v := &m.Versions[i]
		parent, job, steps := "-", "-", "-"
		var loss *float64
		if l := v.Lineage; l != nil {
			parent, job, loss = orDash(l.Parent), orDash(l.Job), l.FinalLoss
			if l.Steps > 0 {
				steps = strconv.Itoa(l.Steps)
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", v.Version, kindOf(v), parent, job, steps, lossText(loss), len(v.Evals), v.URI)
	}
	return tw.Flush()
}

func newModelVersionsCmd(g *globals, ns *string) *cobra.Command {
	return &cobra.Command{
		Use:   "versions NAME",
		Short: "List a model's versions with their lineage and checkpoints",
		Example: `  ark model versions shakespeare
  ark model versions shakespeare -o json`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, _, m, err := modelOf(cmd.Context(), g, *ns, args[0])
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), m.Versions)
			}
			return printVersions(cmd.OutOrStdout(), m)
		},
	}
}

// lineageStep is one version in a chain of parents.
type lineageStep struct {
	Model   string           `json:"model"`
	Version int              `json:"version,omitempty"`
	Kind    string           `json:"kind"`
	Lineage *api.Lineage     `json:"lineage,omitempty"`
	URI     string           `json:"uri"`
	Evals   []api.EvalResult `json:"evals,omitempty"`
	Missing string           `json:"missing,omitempty"`
}

// lineageOf follows parents from a version up to its root: a base, a
// parent outside the catalog (a checkpoint URI), or one no longer there.
func lineageOf(ctx context.Context, c *client.Client, ns string, r spec.ModelRef) ([]lineageStep, error) {
	var out []lineageStep
	seen := map[string]bool{}
	for len(out) < 64 {
		m, v, err := modelVersion(ctx, c, ns, r)
		if err != nil {
			if len(out) == 0 {
				return nil, err
			}
			out = append(out, lineageStep{Model: r.String(), Kind: "-", Missing: err.Error()})
			return out, nil
		}
		key := m.Name + "@" + strconv.Itoa(v.Version)
		if seen[key] {
			return out, fmt.Errorf("lineage of %s loops at %s", out[0].Model, key)
		}
		seen[key] = true
		out = append(out, lineageStep{Model: m.Name, Version: v.Version, Kind: kindOf(v), Lineage: v.Lineage, URI: v.URI, Evals: v.Evals})
		if v.Lineage == nil || v.Lineage.Parent == "" {
			return out, nil
		}
		p := v.Lineage.Parent
		if strings.Contains(p, "://") || strings.HasPrefix(p, "/") {
			out = append(out, lineageStep{Model: p, Kind: "checkpoint", URI: p})
			return out, nil
		}
		if r, err = spec.ParseModelRef(p); err != nil {
			return out, nil
		}
	}
	return out, nil
}

func newModelLineageCmd(g *globals, ns *string) *cobra.Command {
	return &cobra.Command{
		Use:   "lineage NAME[@VERSION]",
		Short: "Show where a version came from: its parents up to the base",
		Example: `  ark model lineage shakespeare@3
  ark model lineage legal -o json`,
		Args: exactArgs(1, "NAME[@VERSION]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := parseRef(args[0])
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			steps, err := lineageOf(cmd.Context(), c, *ns, r)
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), steps)
			}
			w := cmd.OutOrStdout()
			for i, s := range steps {
				indent := strings.Repeat("  ", i)
				arrow := ""
				if i > 0 {
					arrow = "└─ "
				}
				name := s.Model
				if s.Version > 0 {
					name += "@" + strconv.Itoa(s.Version)
				}
				fmt.Fprintf(w, "%s%s%s  %s", indent, arrow, name, s.Kind)
				if l := s.Lineage; l != nil {
					if l.Job != "" {
						fmt.Fprintf(w, "  job %s", l.Job)
					}
					if l.Data != "" {
						fmt.Fprintf(w, "  data %s", l.Data)
					}
					if l.Steps > 0 {
						fmt.Fprintf(w, "  %d steps", l.Steps)
					}
					if l.FinalLoss != nil {
						fmt.Fprintf(w, "  final loss %.4f", *l.FinalLoss)
					}
				}
				if s.Missing != "" {
					fmt.Fprintf(w, "  (%s)", s.Missing)
				} else if s.URI != "" && s.Kind != "checkpoint" {
					fmt.Fprintf(w, "  %s", s.URI)
				}
				fmt.Fprintln(w)
			}
			return nil
		},
	}
}

func newModelRegisterCmd(g *globals, ns *string) *cobra.Command {
	var (
		req    api.ModelRegisterRequest
		public bool
	)
	cmd := &cobra.Command{
		Use:   "register NAME",
		Short: "Register a model, or a new version of one (--uri)",
		Long: `Registers NAME in the namespace (--namespace) or, when it exists, adds a version:
the checkpoint --uri (STORE_URI/JOB/STEP, file:// or s3://). --arch names the
builtin architecture of the weights (gpt-tiny, ...), which jobs naming the model
run with. A fine-tune's result is registered by the job itself (output.model).`,
		Example: `  ark model register shakespeare --uri file://$PWD/examples/base/gpt-tiny --arch gpt-tiny \
      --description "gpt-tiny pretrained on tinyshakespeare" --public
  ark model register shakespeare --uri s3://ark/ckpt/default/ft-1a2b/150 --parent shakespeare@1`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name, req.Namespace = args[0], *ns
			if cmd.Flags().Changed("public") {
				req.Public = &public
			}
			if parent, _ := cmd.Flags().GetString("parent"); parent != "" {
				method := api.MethodFull
				if req.Adapter {
					method = api.MethodLoRA
				}
				req.Lineage = &api.Lineage{Parent: parent, Method: method}
			}
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			resp, err := c.RegisterModel(cmd.Context(), req)
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), resp)
			}
			if resp.Version == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "registered model %s in namespace %s\n", resp.Name, resp.Namespace)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "registered %s@%d in namespace %s (jobs name it model://%s@%d)\n", resp.Name, resp.Version, resp.Namespace, resp.Name, resp.Version)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.URI, "uri", "", "the version's checkpoint (STORE_URI/JOB/STEP); empty registers the model alone")
	f.StringVar(&req.Arch.Preset, "arch", "", "builtin architecture of the weights ("+strings.Join(spec.BuiltinModels, ", ")+")")
	f.StringVar(&req.Description, "description", "", "what the model is")
	f.StringVar(&req.Provider, "provider", "", "who made it")
	f.StringVar(&req.License, "license", "", "its license")
	f.StringVar(&req.Checksum, "checksum", "", "the checkpoint's checksum (ark ckpt show prints it)")
	f.BoolVar(&public, "public", false, "every namespace may read the model (its checkpoints must not be sealed with this namespace's key)")
	f.BoolVar(&req.Adapter, "adapter", false, "the checkpoint is a LoRA adapter of --parent")
	f.String("parent", "", "the version it was trained from (NAME@V)")
	return cmd
}

func newModelRmCmd(g *globals, ns *string) *cobra.Command {
	var keepData bool
	cmd := &cobra.Command{
		Use:   "rm NAME[@VERSION]",
		Short: "Remove a model version (NAME@V) or a whole model",
		Long: `Removes a version, or with NAME alone the model and all its versions. A version
in use by a pending or running job is not removed. The checkpoints of removed
versions that a job registered (output.model) are deleted from their store when
no other version names them, unless --keep-data; checkpoints registered by hand
(ark model register) are never deleted: the catalog did not write them.`,
		Example: `  ark model rm shakespeare@2
  ark model rm scratch --keep-data`,
		Args: exactArgs(1, "NAME[@VERSION]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, c, before, err := modelOf(cmd.Context(), g, *ns, args[0])
			if err != nil {
				return err
			}
			resp, err := c.DeleteModel(cmd.Context(), *ns, r.Name, r.Version)
			if err != nil {
				return err
			}
			written := map[string]bool{}
			for _, v := range before.Versions {
				if v.Lineage != nil && v.Lineage.Job != "" {
					written[v.URI] = true
				}
			}
			var deleted, kept []string
			var errs []string
			for _, uri := range resp.Unshared {
				if keepData || !written[uri] {
					kept = append(kept, uri)
					continue
				}
				if err := deleteCheckpoint(cmd.Context(), uri); err != nil {
					errs = append(errs, fmt.Sprintf("%s: %v", uri, err))
					continue
				}
				deleted = append(deleted, uri)
			}
			if g.json() {
				if err := printJSON(cmd.OutOrStdout(), map[string]any{"removed": resp.Removed, "deleted": deleted, "kept": kept, "keptShared": resp.KeptShared, "errors": errs}); err != nil {
					return err
				}
			} else {
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "removed %s version(s) %s\n", r.Name, strings.Trim(fmt.Sprint(resp.Removed), "[]"))
				for _, u := range deleted {
					fmt.Fprintf(w, "deleted checkpoint %s\n", u)
				}
				for _, u := range resp.KeptShared {
					fmt.Fprintf(w, "kept checkpoint %s (another version names it)\n", u)
				}
				for _, u := range kept {
					fmt.Fprintf(w, "kept checkpoint %s\n", u)
				}
			}
			if len(errs) > 0 {
				return fmt.Errorf("the versions are removed, but deleting their data failed (ark ckpt rm URI to retry): %s", strings.Join(errs, "; "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&keepData, "keep-data", false, "keep the removed versions' checkpoints in their store")
	return cmd
}

// deleteCheckpoint deletes the checkpoint STORE_URI/JOB/STEP.
func deleteCheckpoint(ctx context.Context, uri string) error {
	s, ref, err := openCkptURI(ctx, uri)
	if err != nil {
		return err
	}
	return checkpoint.Delete(ctx, s, ref)
}

// compareRow is one version's result on one dataset.
type compareRow struct {
	Model      string  `json:"model"`
	Kind       string  `json:"kind"`
	Parent     string  `json:"parent,omitempty"`
	Dataset    string  `json:"dataset"`
	Loss       float64 `json:"loss"`
	Perplexity float64 `json:"perplexity"`
	Delta      float64 `json:"deltaLoss"`
	Tokens     int64   `json:"tokens,omitempty"`
	// Prompt/answer datasets (the loss columns are empty then).
	ExactMatch *float64 `json:"exactMatch,omitempty"`
	Overlap    *float64 `json:"overlap,omitempty"`
	Samples    int      `json:"samples,omitempty"`
	Job        string   `json:"job,omitempty"`
}

func newModelCompareCmd(g *globals, ns *string) *cobra.Command {
	var dataset string
	cmd := &cobra.Command{
		Use:   "compare NAME[@VERSION]...",
		Short: "Compare versions' evaluation results from the catalog (no rerun)",
		Long: `Prints the evaluation results recorded against each version (an eval job whose
candidates name catalog versions records them when it succeeds), one row per
version and dataset, with the change in loss against the first row of the same
dataset. NAME alone compares every version of the model.`,
		Example: `  ark model compare shakespeare
  ark model compare shakespeare@1 shakespeare@2 legal@1 --dataset shakespeare.txt`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("want NAME[@VERSION]..., got none")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			var rows []compareRow
			first := map[string]float64{}
			for _, a := range args {
				r, err := parseRef(a)
				if err != nil {
					return err
				}
				m, err := c.Model(cmd.Context(), *ns, r.Name)
				if err != nil {
					return err
				}
				vs := m.Versions
				if r.Version > 0 {
					_, v, err := modelVersion(cmd.Context(), c, *ns, r)
					if err != nil {
						return err
					}
					vs = []api.ModelVersion{*v}
				}
				for i := range vs {
					v := &vs[i]
					parent := ""
					if v.Lineage != nil {
						parent = v.Lineage.Parent
					}
					for _, e := range v.Evals {
						if dataset != "" && !datasetMatches(e.Dataset, dataset) {
							continue
						}
						row := compareRow{Model: fmt.Sprintf("%s@%d", m.Name, v.Version), Kind: kindOf(v), Parent: parent,
							Dataset: e.Dataset, Loss: e.Loss, Perplexity: e.Perplexity, Tokens: e.Tokens,
							ExactMatch: e.ExactMatch, Overlap: e.Overlap, Samples: e.Samples, Job: e.Job}
						if e.ExactMatch == nil {
							base, seen := first[e.Dataset]
							if !seen {
								first[e.Dataset], base = e.Loss, e.Loss
							}
							row.Delta = e.Loss - base
						}
						rows = append(rows, row)
					}
				}
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), rows)
			}
			if len(rows) == 0 {
				return fmt.Errorf("no evaluation results recorded for %s (run an eval job whose base names them: base: model://NAME@1,model://NAME@2)", strings.Join(args, ", "))
			}
			w := cmd.OutOrStdout()
			fmt.Fprintln(w, "| model | kind | parent | dataset | loss | perplexity | Δ loss | exact match | overlap | tokens / pairs | eval job |")
			fmt.Fprintln(w, "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
			for _, r := range rows {
				loss, ppl, delta, em, ov, n := fmt.Sprintf("%.4f", r.Loss), fmt.Sprintf("%.2f", r.Perplexity), signed(r.Delta), "-", "-", r.Tokens
				if r.ExactMatch != nil {
					loss, ppl, delta, em, n = "-", "-", "-", fmt.Sprintf("%.3f", *r.ExactMatch), int64(r.Samples)
				}
				if r.Overlap != nil {
					ov = fmt.Sprintf("%.3f", *r.Overlap)
				}
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %s |\n", r.Model, r.Kind, orDash(r.Parent), r.Dataset, loss, ppl, delta, em, ov, n, orDash(r.Job))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dataset, "dataset", "", "only results on this dataset (its path, or the file's name)")
	return cmd
}

// datasetMatches compares a recorded dataset with what a user typed: the
// same path, or the same file name.
func datasetMatches(recorded, want string) bool {
	if recorded == want {
		return true
	}
	base := func(p string) string { return p[strings.LastIndex(p, "/")+1:] }
	return base(recorded) == base(want)
}

func signed(d float64) string {
	if math.Abs(d) < 5e-5 {
		return "0"
	}
	return fmt.Sprintf("%+.4f", d)
}

func newModelEvalRecordCmd(g *globals, ns *string) *cobra.Command {
	var e api.EvalResult
	cmd := &cobra.Command{
		Use:   "record-eval NAME@VERSION",
		Short: "Record an evaluation result measured elsewhere against a version",
		Long: `Records a held-out loss (and its perplexity, exp(loss)) on --dataset against a
version, for results measured outside Ark. Eval jobs record their own results.`,
		Example: `  ark model record-eval shakespeare@2 --dataset shakespeare.txt --loss 1.91 --tokens 65536`,
		Args:    exactArgs(1, "NAME@VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := parseRef(args[0])
			if err != nil {
				return err
			}
			if r.Version == 0 {
				return usagef("name the version: %s@N", r.Name)
			}
			if e.Dataset == "" {
				return usagef("--dataset is required")
			}
			if e.Loss <= 0 || math.IsInf(e.Loss, 0) || math.IsNaN(e.Loss) {
				return usagef("--loss must be a positive number, got %g", e.Loss)
			}
			e.Perplexity = math.Exp(e.Loss)
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			if err := c.RecordEvals(cmd.Context(), r.Name, api.ModelEvalRequest{Namespace: *ns, Version: r.Version, Results: []api.EvalResult{e}}); err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), e)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "recorded loss %.4f on %s against %s\n", e.Loss, e.Dataset, r)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&e.Dataset, "dataset", "", "the dataset's name or path")
	f.Float64Var(&e.Loss, "loss", 0, "mean held-out loss per token")
	f.Int64Var(&e.Tokens, "tokens", 0, "tokens scored")
	return cmd
}
