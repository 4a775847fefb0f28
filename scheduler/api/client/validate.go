package client

import (
	"context"

	"github.com/ark-sched/ark/scheduler/api"
)

// ValidateJob asks the leader what its placement pass would do with a job
// spec (JSON, or YAML) on the cluster as it is now, without submitting it.
func (c *Client) ValidateJob(ctx context.Context, specBody []byte) (*api.Validation, error) {
	var out api.Validation
	_, err := c.do(ctx, "POST", "/v1/jobs/validate", specBody, &out)
	return &out, err
}
