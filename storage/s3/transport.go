package s3

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
)

// bodyWaitTimeout bounds how long a request waits for the HTTP transport
// to let go of its body.
const bodyWaitTimeout = 30 * time.Second

// settledTransport returns from RoundTrip only once the transport has
// closed the request body. net/http may keep reading a body after
// RoundTrip returns (an early answer, a connection reset mid-body), and
// minio-go rewinds the same body with Seek to retry: without this wait the
// retry races the old request's write loop.
type settledTransport struct{ base http.RoundTripper }

func (t settledTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return t.base.RoundTrip(req)
	}
	b := &closeSignal{ReadCloser: req.Body, closed: make(chan struct{})}
	r2 := *req
	r2.Body = b
	resp, err := t.base.RoundTrip(&r2)
	select {
	case <-b.closed:
	case <-time.After(bodyWaitTimeout):
	}
	return resp, err
}

type closeSignal struct {
	io.ReadCloser
	once   sync.Once
	closed chan struct{}
}

func (c *closeSignal) Close() error {
	err := c.ReadCloser.Close()
	c.once.Do(func() { close(c.closed) })
	return err
}

// maxNetRetries bounds retryNet's attempts.
const maxNetRetries = 5

// retryNet runs fn again, with backoff, while it fails with a connection
// error that minio-go did not retry itself: one that cut an answer short
// after its status line arrived (a 416 or 404 whose body was lost).
func retryNet(ctx context.Context, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || attempt+1 >= maxNetRetries || !isConnError(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-time.After(backoff(attempt)):
		case <-ctx.Done():
			return err
		}
	}
}

func isConnError(err error) bool {
	if minio.ToErrorResponse(err).StatusCode != 0 {
		return false // the server answered
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF)
}
