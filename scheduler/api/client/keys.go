package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/ark-sched/ark/scheduler/api"
)

// DeleteNamespaceKey forgets a namespace's checkpoint key: the checkpoints
// it sealed become unreadable (management only).
func (c *Client) DeleteNamespaceKey(ctx context.Context, namespace string) (*api.NamespaceKeyDeleteResponse, error) {
	var out api.NamespaceKeyDeleteResponse
	_, err := c.do(ctx, http.MethodDelete, "/v1/operator/namespace-keys/"+url.PathEscape(namespace), nil, &out)
	return &out, err
}
