// Package roompattern matches room names against the patterns that
// configuration and tokens use: a name, or a prefix ending in "*"
// ("standup-*"). Topology rules, recording rules and a token's rooms claim
// all mean the same thing by a pattern, so they share this one rule.
package roompattern

import "strings"

// Match reports whether room matches pattern.
func Match(pattern, room string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(room, prefix)
	}
	return pattern == room
}

// Any reports whether room matches one of patterns.
func Any(patterns []string, room string) bool {
	for _, p := range patterns {
		if Match(p, room) {
			return true
		}
	}
	return false
}
