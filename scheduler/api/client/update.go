package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// UpdateJob gives a job a new version of its spec (JSON or YAML). With
// version >= 0 the server refuses it when the job has moved past that
// version (another update came first).
func (c *Client) UpdateJob(ctx context.Context, id string, specBody []byte, version int) (*api.UpdateResponse, error) {
	path := "/v1/jobs/" + url.PathEscape(id)
	if version >= 0 {
		path += "?version=" + strconv.Itoa(version)
	}
	var out api.UpdateResponse
	_, err := c.do(ctx, http.MethodPut, path, specBody, &out)
	return &out, err
}

// PromoteJob lets a service's rollout go on past its canaries.
func (c *Client) PromoteJob(ctx context.Context, id string) (*api.UpdateResponse, error) {
	var out api.UpdateResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(id)+"/promote", nil, &out)
	return &out, err
}

// JobVersions lists every version of a job's spec, oldest first.
func (c *Client) JobVersions(ctx context.Context, id string) ([]*api.JobVersion, error) {
	var out []*api.JobVersion
	_, err := c.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/versions", nil, &out)
	return out, err
}

// CallService posts in as JSON to PATH of service job's endpoint
// (/v1/services/JOB/PATH) and decodes the answer into out. One try may
// take serviceCallTime (a generation, or a service woken from zero) on
// top of the attempt timeout.
func (c *Client) CallService(ctx context.Context, job, path string, in, out any) error {
	_, err := c.doWith(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(job)+path, nil, in, out, serviceCallTime)
	return err
}

const serviceCallTime = 5 * time.Minute
