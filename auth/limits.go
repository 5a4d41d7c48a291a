package auth

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// RateLimit is a key's request allowance: Requests per one Per window.
// The burst equals Requests, so a fresh key may spend a whole window at once.
type RateLimit struct {
	Requests int    `json:"requests" minimum:"1" maximum:"1000000"`
	Per      string `json:"per" enum:"second,minute,hour"`
}

// MaxRateRequests bounds what a key may be given, so a typo cannot turn
// the limiter off.
const MaxRateRequests = 1_000_000

// Window is the length of Per.
func (l RateLimit) Window() time.Duration {
	switch l.Per {
	case "second":
		return time.Second
	case "hour":
		return time.Hour
	default:
		return time.Minute
	}
}

// String is the "600/minute" form the CLI and the environment use.
func (l RateLimit) String() string { return strconv.Itoa(l.Requests) + "/" + l.Per }

// Validate explains what is wrong with l, or returns nil.
func (l RateLimit) Validate() error {
	switch l.Per {
	case "second", "minute", "hour":
	default:
		return fmt.Errorf("per must be second, minute or hour, not %q", l.Per)
	}
	if l.Requests < 1 || l.Requests > MaxRateRequests {
		return fmt.Errorf("requests must be between 1 and %d", MaxRateRequests)
	}
	return nil
}

// ParseRateLimit reads "600/minute" (also "600/min", "10/s", "1000/h").
func ParseRateLimit(s string) (RateLimit, error) {
	n, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return RateLimit{}, fmt.Errorf("a rate limit looks like 600/minute, not %q", s)
	}
	req, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil {
		return RateLimit{}, fmt.Errorf("a rate limit looks like 600/minute, not %q", s)
	}
	switch strings.ToLower(strings.TrimSpace(per)) {
	case "s", "sec", "second":
		per = "second"
	case "m", "min", "minute":
		per = "minute"
	case "h", "hr", "hour":
		per = "hour"
	}
	l := RateLimit{Requests: req, Per: per}
	if err := l.Validate(); err != nil {
		return RateLimit{}, fmt.Errorf("rate limit %q: %w", s, err)
	}
	return l, nil
}

// MaxAllowedIPs bounds a key's allowlist.
const MaxAllowedIPs = 100

// ParseAllowlist checks every entry of an allowlist and returns the prefixes.
// A bare address is taken as a single-host prefix. The error names the
// first bad entry by index and value.
func ParseAllowlist(entries []string) ([]netip.Prefix, error) {
	if len(entries) > MaxAllowedIPs {
		return nil, fmt.Errorf("at most %d entries are allowed", MaxAllowedIPs)
	}
	out := make([]netip.Prefix, 0, len(entries))
	for i, e := range entries {
		p, err := parsePrefix(strings.TrimSpace(e))
		if err != nil {
			return nil, &AllowlistError{Index: i, Entry: e}
		}
		out = append(out, p)
	}
	return out, nil
}

// AllowlistError names an entry that is not a CIDR or an address.
type AllowlistError struct {
	Index int
	Entry string
}

func (e *AllowlistError) Error() string {
	return fmt.Sprintf("allowedIps[%d] %q is not a CIDR such as 203.0.113.0/24 or 2001:db8::/32", e.Index, e.Entry)
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// NormalizeAllowlist returns entries in canonical CIDR form (masked, one
// per line), or the error of ParseAllowlist.
func NormalizeAllowlist(entries []string) ([]string, error) {
	ps, err := ParseAllowlist(entries)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out, nil
}

// AllowsIP reports whether addr is inside one of the prefixes; an empty
// list allows every address. IPv4-mapped IPv6 addresses match IPv4 entries.
func AllowsIP(prefixes []netip.Prefix, addr netip.Addr) bool {
	if len(prefixes) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
