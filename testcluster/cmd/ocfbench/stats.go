package main

import (
	"math"
	"slices"
	"strconv"
)

// percentile returns the p-th percentile (0 <= p <= 100) of xs, linearly
// interpolated between the two closest ranks (Hyndman & Fan type 7, the
// default of R and NumPy), so that percentile(xs, 50) is the usual median:
// the mean of the two middle values when len(xs) is even. xs is not
// modified. It returns NaN for an empty xs or a p outside [0, 100].
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 || !(p >= 0 && p <= 100) {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	h := float64(len(s)-1) * p / 100
	lo := int(math.Floor(h))
	if lo == len(s)-1 {
		return s[lo]
	}
	return s[lo] + (h-float64(lo))*(s[lo+1]-s[lo])
}

// median is percentile(xs, 50).
func median(xs []float64) float64 { return percentile(xs, 50) }

// ratio returns a/b, and false when the quotient means nothing: b is not
// positive, or either value is NaN or infinite. Times are never negative,
// so a non-positive denominator is a bug or an empty sample, not data.
func ratio(a, b float64) (float64, bool) {
	if !finite(a) || !finite(b) || b <= 0 || a < 0 {
		return 0, false
	}
	return a / b, true
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// bound is a goal on a ratio: at most or at least Limit.
type bound struct {
	AtMost bool
	Limit  float64
}

func (b bound) met(r float64) bool {
	if b.AtMost {
		return r <= b.Limit
	}
	return r >= b.Limit
}

func (b bound) String() string {
	if b.AtMost {
		return "<= " + strconv.FormatFloat(b.Limit, 'g', -1, 64) + "x"
	}
	return ">= " + strconv.FormatFloat(b.Limit, 'g', -1, 64) + "x"
}
