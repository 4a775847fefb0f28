package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/ark-sched/ark/scheduler/api"
)

// The model catalog (/v1/models). namespace "" is the server's default
// ("default") for one model, every readable namespace for a list.

func modelPath(name, namespace string, q url.Values) string {
	if q == nil {
		q = url.Values{}
	}
	if namespace != "" {
		q.Set("namespace", namespace)
	}
	p := "/v1/models"
	if name != "" {
		p += "/" + url.PathEscape(name)
	}
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return p
}

// Models lists the models the token may read.
func (c *Client) Models(ctx context.Context, namespace string) ([]*api.Model, error) {
	var out []*api.Model
	_, err := c.do(ctx, http.MethodGet, modelPath("", namespace, nil), nil, &out)
	return out, err
}

// Model returns one model with its versions.
func (c *Client) Model(ctx context.Context, namespace, name string) (*api.Model, error) {
	var out api.Model
	_, err := c.do(ctx, http.MethodGet, modelPath(name, namespace, nil), nil, &out)
	return &out, err
}

// RegisterModel registers a model, a version of it, or both.
func (c *Client) RegisterModel(ctx context.Context, req api.ModelRegisterRequest) (*api.ModelRegisterResponse, error) {
	var out api.ModelRegisterResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/models", req, &out)
	return &out, err
}

// DeleteModel removes a version (version > 0) or the whole model.
func (c *Client) DeleteModel(ctx context.Context, namespace, name string, version int) (*api.ModelDeleteResponse, error) {
	q := url.Values{}
	if version > 0 {
		q.Set("version", strconv.Itoa(version))
	}
	var out api.ModelDeleteResponse
	_, err := c.do(ctx, http.MethodDelete, modelPath(name, namespace, q), nil, &out)
	return &out, err
}

// RecordEvals records evaluation results against a version.
func (c *Client) RecordEvals(ctx context.Context, name string, req api.ModelEvalRequest) error {
	_, err := c.do(ctx, http.MethodPost, modelPath(name, "", nil)+"/evals", req, nil)
	return err
}
