package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// StreamService posts in as JSON to PATH of service job's endpoint and
// returns the answer's body as it arrives (Server-Sent Events); the caller
// closes it. An error answer is an *APIError, as with CallService. It is
// tried once per server until one answers with anything but 503, with no
// retry after an answer began: a replica's stream cannot be resumed.
func (c *Client) StreamService(ctx context.Context, job, path string, in any) (io.ReadCloser, error) {
	payload, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	return c.firstBody(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(job)+path, payload, int(c.preferred.Load()))
}

// openAIError is the error object of an OpenAI-compatible replica's
// answer, which the service endpoint passes on as it is.
type openAIError struct {
	Error struct {
		Message string `json:"message"`
		Code    string `json:"code"`
	} `json:"error"`
}

// openAIMessage is the message of an OpenAI-shaped error body, or "".
func openAIMessage(data []byte) string {
	var e openAIError
	if json.Unmarshal(data, &e) != nil {
		return ""
	}
	return e.Error.Message
}

// AddServiceAdapter adds an adapter to a builtin service's spec (POST
// /v1/jobs/JOB/adapters): a job update its running replicas take in place.
func (c *Client) AddServiceAdapter(ctx context.Context, job string, req api.ServiceAdapterRequest) (*api.ServiceAdapterAnswer, error) {
	var out api.ServiceAdapterAnswer
	_, err := c.doWith(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(job)+"/adapters", nil, req, &out, serviceCallTime)
	return &out, err
}

// ServiceAdapterStates asks what each serving replica of a builtin
// service says of its adapters (GET /v1/jobs/JOB/adapters), of adapter
// name alone when it is not "".
func (c *Client) ServiceAdapterStates(ctx context.Context, job, name string) (*api.ServiceAdapterStates, error) {
	path := "/v1/jobs/" + url.PathEscape(job) + "/adapters"
	if name != "" {
		path += "?" + url.Values{"name": {name}}.Encode()
	}
	var out api.ServiceAdapterStates
	_, err := c.doWith(ctx, http.MethodGet, path, nil, nil, &out, time.Minute)
	return &out, err
}

// RemoveServiceAdapter removes an adapter from a builtin service's spec
// (DELETE /v1/jobs/JOB/adapters/NAME).
func (c *Client) RemoveServiceAdapter(ctx context.Context, job, name string) (*api.ServiceAdapterAnswer, error) {
	var out api.ServiceAdapterAnswer
	_, err := c.doWith(ctx, http.MethodDelete, "/v1/jobs/"+url.PathEscape(job)+"/adapters/"+url.PathEscape(name), nil, nil, &out, serviceCallTime)
	return &out, err
}

// firstBody sends one request to each server in turn, from the one at
// index first, and returns the body of the first answer that is not an
// error; a server that cannot be reached or answers 503 passes the
// request to the next, any other error answer ends it (*APIError). Used
// for streams, which cannot be read into a value and retried.
func (c *Client) firstBody(ctx context.Context, method, path string, payload []byte, first int) (io.ReadCloser, error) {
	var lastErr error
	for k := range c.addrs {
		addr := c.addrs[(first+k)%len(c.addrs)]
		resp, err := c.send(ctx, method, addr+path, payload, nil)
		if err != nil {
			lastErr = err
			continue
		}
		if resp.StatusCode >= 300 {
			_, err := decodeAnswer(resp, nil)
			if resp.StatusCode == http.StatusServiceUnavailable {
				lastErr = err
				continue
			}
			return nil, err
		}
		return resp.Body, nil
	}
	return nil, lastErr
}
