// Package ckptpath owns how checkpoint locations are spelled, with no I/O,
// so that the leader's pure pass (scheduler/sched) and the checkpoint
// store (storage/checkpoint) build them the same way:
//
//	STORE/NAMESPACE/JOB/STEP
//
// STORE is the servers' checkpoint store URI (--checkpoint-store);
// STORE/NAMESPACE is the store a job's tasks open (one prefix per
// namespace, so namespaces' keys never mix); JOB/STEP is a checkpoint in
// it, STEP written as 12 digits so that lexical order is numeric order.
// Path elements go before the store URI's ?query, never after it.
package ckptpath

import (
	"fmt"
	"strconv"
	"strings"
)

// StepDigits is the width of a step directory.
const StepDigits = 12

// MaxStep is the largest step StepDigits can hold.
const MaxStep = 999_999_999_999

// StepDir formats a step so that lexical order is numeric order.
func StepDir(step int64) string { return fmt.Sprintf("%0*d", StepDigits, step) }

// ParseStep reads a step directory written by StepDir.
func ParseStep(s string) (int64, bool) {
	if len(s) != StepDigits {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}

// ParseURIStep reads the step element of a checkpoint URI (STORE/JOB/STEP),
// which may be written with or without leading zeros. ok is false for an
// element that is no step: the URI then names STORE/JOB (its newest
// checkpoint). Both checkpoint.SplitURI and the sandbox's rule of what a
// task reads through which store (scheduler/spec ReadRoots) read it here.
func ParseURIStep(s string) (step int64, ok bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// Join appends path elements to a store URI, before its ?query
// (s3://bucket/p?region=x + ns, job: s3://bucket/p/ns/job?region=x).
func Join(store string, elems ...string) string {
	base, query, hasQuery := strings.Cut(store, "?")
	s := strings.TrimSuffix(base, "/")
	for _, e := range elems {
		s += "/" + e
	}
	if hasQuery && query != "" {
		s += "?" + query
	}
	return s
}

// JobURI is where a job's checkpoints go: STORE/NAMESPACE/JOB. The
// allocation carries it (ARK_CHECKPOINT_URI); its task opens
// STORE/NAMESPACE and writes JOB/STEP there.
func JobURI(store, namespace, job string) string { return Join(store, namespace, job) }
