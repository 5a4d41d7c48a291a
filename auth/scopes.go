package auth

import (
	"fmt"
	"slices"
	"strings"
)

// Scope is one permission a key may carry.
type Scope string

const (
	ReferencesRead  Scope = "references:read"
	ReferencesWrite Scope = "references:write"
	ReportsRead     Scope = "reports:read"
	ReportsWrite    Scope = "reports:write"
	CandidatesRead  Scope = "candidates:read"
	CandidatesWrite Scope = "candidates:write"
	ValuationsRead  Scope = "valuations:read"
	ValuationsWrite Scope = "valuations:write"
)

// ScopeInfo describes a scope for docs and key-creation UIs.
type ScopeInfo struct {
	Scope       Scope  `json:"scope"`
	Description string `json:"description"`
}

// Catalogue is every scope, in the order docs show them. As at Stripe, a
// write scope also reads its resource: a key that may change a thing sees
// it in every answer anyway, so read policies accept it (see Reads).
var Catalogue = []ScopeInfo{
	{ReferencesRead, "Read reference requests, referee responses and reports"},
	{ReferencesWrite, "Start and cancel reference requests and send invitations; also reads them"},
	{ReportsRead, "Read reports"},
	{ReportsWrite, "Generate reports and manage share links; also reads reports"},
	{CandidatesRead, "Read candidates"},
	{CandidatesWrite, "Create and update candidates; also reads them"},
	{ValuationsRead, "Read valuation runs"},
	{ValuationsWrite, "Start valuation runs; also reads them"},
}

// Reads is the policy of an operation that reads: each read scope, and the
// write scope of the same resource, which implies it.
func Reads(read ...Scope) Policy {
	var p Policy
	for _, s := range read {
		p = append(p, s)
		if w := Scope(strings.TrimSuffix(string(s), ":read") + ":write"); w != s && w.Known() && !slices.Contains(read, w) {
			p = append(p, w)
		}
	}
	return p
}

// AllScopes lists every scope in the catalogue.
func AllScopes() []Scope {
	out := make([]Scope, len(Catalogue))
	for i, s := range Catalogue {
		out[i] = s.Scope
	}
	return out
}

// Known reports whether s is in the catalogue.
func (s Scope) Known() bool {
	for _, c := range Catalogue {
		if c.Scope == s {
			return true
		}
	}
	return false
}

// ParseScopes validates a list of scope names, returning a 422-style error
// naming the first unknown one. Duplicates are removed; order is the
// catalogue's so stored keys compare equal.
func ParseScopes(names []string) ([]Scope, error) {
	seen := map[Scope]bool{}
	for _, n := range names {
		s := Scope(strings.TrimSpace(n))
		if !s.Known() {
			return nil, fmt.Errorf("unknown scope %q; known scopes are %s", n, strings.Join(scopeNames(AllScopes()), ", "))
		}
		seen[s] = true
	}
	var out []Scope
	for _, s := range AllScopes() {
		if seen[s] {
			out = append(out, s)
		}
	}
	return out, nil
}

// Policy is satisfied when the principal holds any one of its scopes. An
// empty policy admits any valid key.
type Policy []Scope

// AnyOf builds a Policy.
func AnyOf(s ...Scope) Policy { return Policy(s) }

// Allows reports whether scopes satisfy the policy.
func (p Policy) Allows(scopes []Scope) bool {
	if len(p) == 0 {
		return true
	}
	for _, s := range p {
		if slices.Contains(scopes, s) {
			return true
		}
	}
	return false
}

// String renders the policy for errors and docs: "reports:read or references:read".
func (p Policy) String() string {
	if len(p) == 0 {
		return "any valid key"
	}
	return strings.Join(scopeNames(p), " or ")
}

func scopeNames(s []Scope) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = string(x)
	}
	return out
}
