// Package faultproxy is an HTTP proxy that injects the faults object
// stores show in production, for tests: it answers some requests with a
// 500, drops the connection half-way through a request body, drops it
// after the server has handled the request (so the client cannot know
// whether it happened), cuts object downloads short, and stalls. Faults
// are drawn from a seeded generator and can be changed or switched off
// while the proxy runs.
//
// The proxy keeps the client's Host header, so SigV4-signed S3 requests
// made to the proxy's address verify at the server behind it.
package faultproxy
