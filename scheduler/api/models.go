package api

import (
	"fmt"
	"math"
	"time"
)

// The model catalog's wire types (GET/POST/DELETE /v1/models): models,
// their versions and where each version came from. Models are replicated
// state, owned by a namespace; a public model every namespace may read.

// Fine-tune methods a version's lineage records.
const (
	MethodFull     = "full"
	MethodLoRA     = "lora"
	MethodImported = "imported"
)

// Model is a catalog model: what it is and every version of it.
type Model struct {
	Name        string `json:"name"`
	Namespace   string `json:"namespace"`
	Description string `json:"description,omitempty"`
	Provider    string `json:"provider,omitempty"`
	License     string `json:"license,omitempty"`
	// Public models may be read (listed, named by jobs) by every
	// namespace; only their own namespace may change them. A public
	// version must be a checkpoint other namespaces' tasks can open:
	// one not sealed with the owner's namespace key (an imported or
	// shipped base), since the key never leaves its namespace.
	Public bool `json:"public,omitempty"`
	// Arch is the architecture of every version.
	Arch     ModelArch      `json:"arch"`
	Versions []ModelVersion `json:"versions"`
	// LastVersion is the highest version number ever given: a removed
	// version's number is not given again.
	LastVersion int `json:"lastVersion"`

	CreateIndex uint64 `json:"createIndex"`
	ModifyIndex uint64 `json:"modifyIndex"`
}

// ModelArch says which network a model's weights are for.
type ModelArch struct {
	// Family is the network ("gpt2"); Preset a builtin model name
	// (gpt-tiny) when the weights fit one.
	Family string `json:"family,omitempty"`
	Preset string `json:"preset,omitempty"`
	Params int64  `json:"params,omitempty"`
}

// ModelVersion is one set of weights of a model.
type ModelVersion struct {
	// Version numbers start at 1 and are never reused.
	Version int `json:"version"`
	// URI is the checkpoint (STORE/JOB/STEP); Checksum its manifest's.
	URI      string `json:"uri"`
	Checksum string `json:"checksum,omitempty"`
	// Adapter is set on a LoRA adapter: its weights need the base its
	// lineage names.
	Adapter bool     `json:"adapter,omitempty"`
	Lineage *Lineage `json:"lineage,omitempty"`
	// Evals are the evaluations recorded against this version.
	Evals []EvalResult `json:"evals,omitempty"`
	// Created is when the version was registered.
	Created     time.Time `json:"created"`
	CreateIndex uint64    `json:"createIndex"`
}

// Lineage is where a derived version came from.
type Lineage struct {
	// Parent is the version it was trained from ("gpt-tiny@1").
	Parent string `json:"parent,omitempty"`
	// Job produced it.
	Job string `json:"job,omitempty"`
	// Data is the training data (a path on the nodes or a URI) and its
	// checksum when known.
	Data         string `json:"data,omitempty"`
	DataChecksum string `json:"dataChecksum,omitempty"`
	// Method is full, lora or imported; Rank the LoRA rank.
	Method string `json:"method,omitempty"`
	Rank   int    `json:"rank,omitempty"`
	// Steps trained and the last training loss the job reported.
	Steps     int      `json:"steps,omitempty"`
	FinalLoss *float64 `json:"finalLoss,omitempty"`
}

// EvalResult is one evaluation of a version on a dataset.
type EvalResult struct {
	Dataset string `json:"dataset"`
	Job     string `json:"job,omitempty"`
	// Checkpoint is what was evaluated, as the eval job named it.
	Checkpoint string `json:"checkpoint,omitempty"`
	// Loss is the mean held-out loss per token, Perplexity exp(Loss).
	Loss       float64 `json:"loss"`
	Perplexity float64 `json:"perplexity"`
	// Tokens scored.
	Tokens int64 `json:"tokens,omitempty"`
	// On a dataset of prompt/answer pairs: the fraction of exact
	// answers, the mean word overlap (F1), and the number of pairs (Loss
	// and Perplexity are 0 then).
	ExactMatch *float64  `json:"exactMatch,omitempty"`
	Overlap    *float64  `json:"overlap,omitempty"`
	Samples    int       `json:"samples,omitempty"`
	Time       time.Time `json:"time"`
}

// ModelRegisterRequest is the body of POST /v1/models: a new model (with
// its first version) or, for a model that exists, a new version. The
// model's fields are kept from its first registration unless given again.
type ModelRegisterRequest struct {
	Name        string    `json:"name"`
	Namespace   string    `json:"namespace,omitempty"`
	Description string    `json:"description,omitempty"`
	Provider    string    `json:"provider,omitempty"`
	License     string    `json:"license,omitempty"`
	Public      *bool     `json:"public,omitempty"`
	Arch        ModelArch `json:"arch"`
	// URI of the version's checkpoint; empty registers the model alone.
	URI      string   `json:"uri,omitempty"`
	Checksum string   `json:"checksum,omitempty"`
	Adapter  bool     `json:"adapter,omitempty"`
	Lineage  *Lineage `json:"lineage,omitempty"`
}

// ModelRegisterResponse names what was registered.
type ModelRegisterResponse struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Version is the new version's number (0: the model alone).
	Version int `json:"version"`
}

// ModelDeleteResponse answers DELETE /v1/models/{name}[?version=N]: the
// versions removed and, of their checkpoints, those no other version
// names (the caller may delete their data; the rest is shared).
type ModelDeleteResponse struct {
	Removed    []int    `json:"removed"`
	Unshared   []string `json:"unshared,omitempty"`
	KeptShared []string `json:"keptShared,omitempty"`
}

// ModelEvalRequest is the body of POST /v1/models/{name}/evals: results
// to record against a version.
type ModelEvalRequest struct {
	Namespace string       `json:"namespace,omitempty"`
	Version   int          `json:"version"`
	Results   []EvalResult `json:"results"`
}

// ModelRef is a catalog reference a job's spec named and what it
// resolved to at submission.
type ModelRef struct {
	// Field is the spec field ("task.builtin.base[1]"), Ref what it said
	// ("model://legal@2"), Model and Version what it resolved to.
	Field     string `json:"field"`
	Ref       string `json:"ref"`
	Namespace string `json:"namespace"`
	Model     string `json:"model"`
	Version   int    `json:"version"`
	URI       string `json:"uri"`
}

// MaxEvalResults bounds the results one report or request carries.
const MaxEvalResults = 64

// CheckEvals reports why evaluation results from a task or a client
// cannot be recorded: too many, a missing dataset, a loss that is no
// number, fields too long to keep.
func CheckEvals(evals []EvalResult) error {
	if len(evals) > MaxEvalResults {
		return fmt.Errorf("evals: at most %d results, got %d", MaxEvalResults, len(evals))
	}
	for i, e := range evals {
		switch {
		case e.Dataset == "" || len(e.Dataset) > 1024:
			return fmt.Errorf("evals[%d].dataset: must be 1-1024 characters", i)
		case len(e.Checkpoint) > 2048 || len(e.Job) > 256:
			return fmt.Errorf("evals[%d]: checkpoint (2048) or job (256) too long", i)
		case math.IsNaN(e.Loss) || math.IsInf(e.Loss, 0) || e.Loss < 0:
			return fmt.Errorf("evals[%d].loss: must be a finite number >= 0, got %g", i, e.Loss)
		case math.IsNaN(e.Perplexity) || math.IsInf(e.Perplexity, 0) || e.Perplexity < 0:
			return fmt.Errorf("evals[%d].perplexity: must be a finite number >= 0, got %g", i, e.Perplexity)
		case e.Tokens < 0 || e.Samples < 0:
			return fmt.Errorf("evals[%d]: tokens and samples must be >= 0, got %d and %d", i, e.Tokens, e.Samples)
		case !fraction(e.ExactMatch) || !fraction(e.Overlap):
			return fmt.Errorf("evals[%d]: exactMatch and overlap must be between 0 and 1", i)
		}
	}
	return nil
}

// fraction reports whether p is absent or a number in [0, 1].
func fraction(p *float64) bool { return p == nil || (*p >= 0 && *p <= 1) }
