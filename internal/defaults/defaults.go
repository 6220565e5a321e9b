// Package defaults fills unset configuration fields: the one rule every
// Config.setDefaults in the repository shares.
package defaults

import "time"

// Positive sets *v to def when it is zero or negative (unset, or a value
// that cannot mean anything for a size, a count or a duration).
func Positive[T uint8 | int | int64 | uint64 | float64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
