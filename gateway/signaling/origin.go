package signaling

import (
	"net/url"
	"strings"
)

// originPolicy decides which page origins may open a signaling connection.
// Patterns are an exact origin, "*", or an origin with one "*" standing for
// the port ("http://localhost:*") or for a leading subdomain
// ("https://*.example.com").
type originPolicy struct {
	any      bool
	patterns []string
}

func newOriginPolicy(patterns []string) originPolicy {
	p := originPolicy{}
	for _, pat := range patterns {
		if pat == "*" {
			p.any = true
			continue
		}
		p.patterns = append(p.patterns, strings.ToLower(strings.TrimSuffix(pat, "/")))
	}
	return p
}

// allowed reports whether origin may connect to a server reached as host
// (the request's Host header). Requests without an Origin (non-browser
// clients) and same-origin pages are always allowed: CORS protects browsers'
// users from other sites, not the server from programs.
func (p originPolicy) allowed(origin, host string) bool {
	if origin == "" || p.any {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	o := strings.ToLower(origin)
	for _, pat := range p.patterns {
		if matchOrigin(pat, o) {
			return true
		}
	}
	return false
}

func matchOrigin(pattern, origin string) bool {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return pattern == origin
	}
	prefix, suffix := pattern[:star], pattern[star+1:]
	if !strings.HasPrefix(origin, prefix) || !strings.HasSuffix(origin, suffix) {
		return false
	}
	if len(origin) <= len(prefix)+len(suffix) {
		return false
	}
	wild := origin[len(prefix) : len(origin)-len(suffix)]
	if strings.HasSuffix(prefix, ":") { // a port
		for _, c := range wild {
			if c < '0' || c > '9' {
				return false
			}
		}
		return true
	}
	// A subdomain label sequence: letters, digits, dashes and dots only.
	for _, c := range wild {
		if !(c == '-' || c == '.' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
