package serve

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Per-model rate limits (Options.ModelRate): each model the server
// serves, the base and every adapter apiece, has a token bucket of
// ModelRate requests a second, ModelBurst deep. A request past it is
// refused at once with 429 and the Retry-After its bucket needs, before
// it takes a queue place: one busy specialist cannot fill the queue and
// the batch for the others.

// ErrRateLimited: the request's model is past its rate limit.
var ErrRateLimited = errors.New("serve: model rate limit exceeded")

// rateLimitError is ErrRateLimited with the wait its bucket needs.
type rateLimitError struct {
	model string
	after time.Duration
}

func (e *rateLimitError) Error() string {
	return fmt.Sprintf("model %q is past its rate limit; retry in %s", e.model, e.after.Round(time.Millisecond))
}

func (e *rateLimitError) Is(target error) bool { return target == ErrRateLimited }

// retryAfterSeconds is e's wait as a Retry-After value (whole seconds, at
// least 1).
func (e *rateLimitError) retryAfterSeconds() string {
	return fmt.Sprint(max(1, int(math.Ceil(e.after.Seconds()))))
}

// retryAfterOf is the Retry-After of a 429 for err: what a rate-limited
// model's bucket needs, else the queue's default.
func retryAfterOf(err error) string {
	var rl *rateLimitError
	if errors.As(err, &rl) {
		return rl.retryAfterSeconds()
	}
	return retryAfter
}

// modelLimits holds a bucket per model; nil limits nothing.
type modelLimits struct {
	rate  rate.Limit
	burst int
	mu    sync.Mutex
	byMod map[string]*rate.Limiter
}

func newModelLimits(perSecond float64, burst int) *modelLimits {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	return &modelLimits{rate: rate.Limit(perSecond), burst: burst, byMod: map[string]*rate.Limiter{}}
}

// take spends one request of model's bucket, or says how long to wait.
func (l *modelLimits) take(model string, now time.Time) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	lim := l.byMod[model]
	if lim == nil {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.byMod[model] = lim
	}
	l.mu.Unlock()
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // refused: it takes nothing from the bucket
		return &rateLimitError{model: model, after: d}
	}
	return nil
}

// forget drops an adapter's bucket when it is removed.
func (l *modelLimits) forget(model string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.byMod, model)
}
