// Package ui is the dashboard the servers serve under /ui/: the cluster's
// GPU map, queues, jobs, one job (ranks, logs, loss curve) and nodes.
//
// Pages are html/template fragments rendered on the server from a Source
// (the server's state store, filtered by the caller as the API filters
// it) and a little hand-written JavaScript (static/app.js) that fetches
// them with the browser's token and keeps them live over a stream of
// Server-Sent Events that rides the store's blocking queries. There is no
// build step: templates and assets are embedded with embed.FS.
//
// The shell page (/ui/, /ui/jobs, ...) holds no data, so it is served
// without a token; every fragment (/ui/data/{page}) goes through the
// server's access check first. The package imports nothing of the server:
// the server hands it a Source.
package ui
