package api

import (
	"time"

	"github.com/ark-sched/ark/scheduler/spec"
)

// Deployment statuses.
const (
	// DeploymentRunning: new replicas are being rolled out.
	DeploymentRunning = "running"
	// DeploymentSuccessful: every replica runs the version, healthy.
	DeploymentSuccessful = "successful"
	// DeploymentFailed: a new replica ended by itself or the rollout made
	// no progress within its deadline. Replicas of older versions that
	// still serve are left serving.
	DeploymentFailed = "failed"
	// DeploymentSuperseded: a newer update replaced this rollout.
	DeploymentSuperseded = "superseded"
)

// Deployment is a service's rollout of one version of its spec
// (spec.Update says how). The leader drives it: each pass starts new
// replicas next to old ones, at most Strategy.MaxParallel at a time, and
// stops an old replica once the new one of its rank has stayed ready
// Strategy.MinHealthyTime.
type Deployment struct {
	Version  int         `json:"version"`
	Status   string      `json:"status"`
	Message  string      `json:"message,omitempty"`
	Strategy spec.Update `json:"strategy"`
	// Promoted: the canaries were promoted (`ark job promote`), so the
	// rollout goes on past them. Set at once when there are none.
	Promoted bool `json:"promoted,omitempty"`
	// RevertOf is the version whose failed rollout this one reverts
	// (AutoRevert); 0 when it is a user's update.
	RevertOf int `json:"revertOf,omitempty"`
	// StartTime is when the update was committed; Progress when the
	// rollout last replaced a replica (the progress deadline runs from
	// it).
	StartTime time.Time  `json:"startTime"`
	Progress  time.Time  `json:"progress"`
	EndTime   *time.Time `json:"endTime,omitempty"`
}

// Active reports whether the rollout is still going.
func (d *Deployment) Active() bool { return d != nil && d.Status == DeploymentRunning }

// JobVersion is one kept version of a job's spec (`ark job history`).
type JobVersion struct {
	JobID   string   `json:"jobId"`
	Version int      `json:"version"`
	Spec    spec.Job `json:"spec"`
	// Stable: this version rolled out to every replica (or needed no
	// rollout); AutoRevert goes back to the newest stable version.
	Stable bool `json:"stable,omitempty"`
	// Status is how the version's rollout ended (a Deployment status);
	// "" for the first version and for versions that changed no replica.
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	// RevertTo is the version whose spec AutoRevert restored as this one.
	RevertTo    *int      `json:"revertTo,omitempty"`
	SubmitTime  time.Time `json:"submitTime"`
	CreateIndex uint64    `json:"createIndex"`
	ModifyIndex uint64    `json:"modifyIndex"`
}

// UpdateResponse answers PUT /v1/jobs/{id} and a promotion: the job's new
// version and whether its replicas roll out.
type UpdateResponse struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
	Rollout bool   `json:"rollout"`
	// InPlace counts the serving replicas that take the new version
	// without a restart (a change of rules or adapters, of the count).
	InPlace int `json:"inPlace,omitempty"`
	// NewPaths, with Rollout, are the local paths the new version reads
	// that a serving replica's sandbox does not open (the topmost of
	// each, sched.NewReadRoots): why a change of adapters alone is rolled
	// out instead of taken in place.
	NewPaths []string `json:"newPaths,omitempty"`
	Index    uint64   `json:"index"`
}
