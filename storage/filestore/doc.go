// Package filestore is the file://DIR object store, Ark's embedded default.
//
// Each object is a file under the root directory at the path of its key.
// A put streams into a temporary file under ROOT/.ark-tmp (on Linux
// starting the disk write of each 8 MiB as soon as it is written, so the
// disk works while data arrives instead of all at the final fsync), fsyncs
// it, renames it into place and fsyncs the parent directory, so an object is
// either absent or complete, even across a crash. Leftover temporary files
// (from a crash mid-put) are reported by ListIncomplete and removed by
// Sweep.
package filestore
