package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/ark-sched/ark/scheduler/api"
)

// ACL calls (/v1/acl): all need a management token but TokenSelf.

// ACLBootstrap creates the first management token of the ACL state; it
// works once. The answer carries the token's secret, shown only here.
func (c *Client) ACLBootstrap(ctx context.Context) (*api.ACLToken, error) {
	var out api.ACLToken
	_, err := c.do(ctx, http.MethodPost, "/v1/acl/bootstrap", nil, &out)
	return &out, err
}

// ACLPolicyApply creates or replaces policy name from a YAML or JSON
// document (the server decodes and validates it).
func (c *Client) ACLPolicyApply(ctx context.Context, name string, doc []byte) (*api.ACLPolicy, error) {
	var out api.ACLPolicy
	_, err := c.do(ctx, http.MethodPut, "/v1/acl/policy/"+url.PathEscape(name), doc, &out)
	return &out, err
}

// ACLPolicies lists the policies.
func (c *Client) ACLPolicies(ctx context.Context) ([]*api.ACLPolicy, error) {
	var out []*api.ACLPolicy
	_, err := c.do(ctx, http.MethodGet, "/v1/acl/policies", nil, &out)
	return out, err
}

// ACLPolicy returns one policy.
func (c *Client) ACLPolicy(ctx context.Context, name string) (*api.ACLPolicy, error) {
	var out api.ACLPolicy
	_, err := c.do(ctx, http.MethodGet, "/v1/acl/policy/"+url.PathEscape(name), nil, &out)
	return &out, err
}

// ACLPolicyDelete deletes a policy.
func (c *Client) ACLPolicyDelete(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/acl/policy/"+url.PathEscape(name), nil, nil)
	return err
}

// ACLTokenCreate creates a token; the answer carries its secret, shown
// only here.
func (c *Client) ACLTokenCreate(ctx context.Context, req api.ACLTokenRequest) (*api.ACLToken, error) {
	var out api.ACLToken
	_, err := c.do(ctx, http.MethodPost, "/v1/acl/tokens", req, &out)
	return &out, err
}

// ACLTokens lists the tokens (without secrets).
func (c *Client) ACLTokens(ctx context.Context) ([]*api.ACLToken, error) {
	var out []*api.ACLToken
	_, err := c.do(ctx, http.MethodGet, "/v1/acl/tokens", nil, &out)
	return out, err
}

// ACLToken returns one token by accessor ID (without its secret).
func (c *Client) ACLToken(ctx context.Context, accessor string) (*api.ACLToken, error) {
	var out api.ACLToken
	_, err := c.do(ctx, http.MethodGet, "/v1/acl/token/"+url.PathEscape(accessor), nil, &out)
	return &out, err
}

// ACLTokenSelf describes the token the client uses.
func (c *Client) ACLTokenSelf(ctx context.Context) (*api.ACLToken, error) {
	var out api.ACLToken
	_, err := c.do(ctx, http.MethodGet, "/v1/acl/token/self", nil, &out)
	return &out, err
}

// ACLTokenDelete deletes a token by accessor ID; it stops working at once.
func (c *Client) ACLTokenDelete(ctx context.Context, accessor string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/acl/token/"+url.PathEscape(accessor), nil, nil)
	return err
}
