// Package ckptbench measures checkpoint bandwidth and training stall for
// `ark bench ckpt`: a raw fsync'd sequential write of the same bytes to the
// same disk (the ceiling), the same checkpoint saved to file:// and to an
// S3 server, and a training-loop simulation comparing the stall per
// checkpoint of a synchronous save with the AsyncWriter's.
package ckptbench
