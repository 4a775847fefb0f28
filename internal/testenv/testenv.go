// Package testenv holds what tests share about the machine they run on.
package testenv

import (
	"math"
	"os"
	"strconv"
	"time"
)

// ScaleEnv names the factor every test timeout is multiplied by: a slow or
// loaded machine (2 shared cores under -race) sets it above 1 instead of
// each test guessing its own slack.
const ScaleEnv = "ARK_TEST_TIMEOUT_SCALE"

// Scale returns d multiplied by ARK_TEST_TIMEOUT_SCALE (a finite positive
// number, fractions allowed; 1 when unset or malformed).
func Scale(d time.Duration) time.Duration {
	return time.Duration(float64(d) * factor(os.Getenv(ScaleEnv)))
}

func factor(v string) float64 {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f > 0) || math.IsInf(f, 0) { // NaN and Inf too
		return 1
	}
	return f
}
