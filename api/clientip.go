package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP finds the caller's address: the socket peer, unless that peer is
// one of the trusted proxies, in which case X-Forwarded-For is read from
// the right, skipping trusted hops, and the first untrusted address wins.
// Headers from anyone else are ignored, so a client cannot choose its own
// address.
type ClientIP struct {
	Trusted []netip.Prefix
}

// ParseTrustedProxies reads VEREF_TRUSTED_PROXIES: comma-separated CIDRs
// or addresses.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		p, err := netip.ParsePrefix(e)
		if err != nil {
			a, aerr := netip.ParseAddr(e)
			if aerr != nil {
				return nil, err
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Of returns the client address of r (the zero Addr if unparseable).
func (c ClientIP) Of(r *http.Request) netip.Addr {
	peer := socketAddr(r.RemoteAddr)
	if !c.trusted(peer) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return peer // a malformed chain: trust only what we saw
			}
			a = a.Unmap()
			if !c.trusted(a) {
				return a
			}
		}
	}
	return peer
}

func (c ClientIP) trusted(a netip.Addr) bool {
	for _, p := range c.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func socketAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// Scheme is "https" when r came over TLS, or through a trusted proxy that
// says so in X-Forwarded-Proto; otherwise "http".
func (c ClientIP) Scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if c.trusted(socketAddr(r.RemoteAddr)) && strings.EqualFold(firstValue(r.Header.Get("X-Forwarded-Proto")), "https") {
		return "https"
	}
	return "http"
}

// Host is the host the client asked for: X-Forwarded-Host from a trusted
// proxy, else the Host header.
func (c ClientIP) Host(r *http.Request) string {
	if c.trusted(socketAddr(r.RemoteAddr)) {
		if h := firstValue(r.Header.Get("X-Forwarded-Host")); h != "" {
			return h
		}
	}
	return r.Host
}

func firstValue(h string) string {
	first, _, _ := strings.Cut(h, ",")
	return strings.TrimSpace(first)
}
