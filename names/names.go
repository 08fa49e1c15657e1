// Package names holds slum's naming rules, in one place for every package
// that checks a name: DNS labels (process names, regions), ids (servers,
// tenants, instances: labels without "--"), host names, and the mapping of
// a tenant's instance to its tenement instance name "process:tenant--instance"
// and back. The checks return why a name is rejected, or "" when it is
// fine; callers turn that into their own error type.
package names

import (
	"strconv"
	"strings"
)

// MaxLabel is the longest DNS label, and so the longest id, process name
// and tenement instance id.
const MaxLabel = 63

// MaxDomain is the longest host name.
const MaxDomain = 253

// Sep joins a tenant id and an instance id into one tenement instance id.
// Ids never contain it, which keeps the mapping reversible.
const Sep = "--"

// LabelProblem returns why s is not a DNS label (lower-case letters, digits
// and '-', 1 to 63 characters, not starting or ending with '-'), or "".
func LabelProblem(s string) string {
	if s == "" {
		return "must not be empty"
	}
	if len(s) > MaxLabel {
		return "must be at most 63 characters"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return "must be lower-case letters, digits and '-' only (a DNS label)"
		}
	}
	if s[0] == '-' || s[len(s)-1] == '-' {
		return "must not start or end with '-'"
	}
	return ""
}

// IsLabel reports whether s is a DNS label.
func IsLabel(s string) bool { return LabelProblem(s) == "" }

// IDProblem returns why s is not a server, tenant or instance id (a DNS
// label without "--"), or "".
func IDProblem(s string) string {
	if p := LabelProblem(s); p != "" {
		return p
	}
	if strings.Contains(s, Sep) {
		return `must not contain "--" (slum joins tenant and instance ids with it)`
	}
	return ""
}

// DomainProblem returns why s is not a host name (dot-separated DNS labels,
// at most 253 characters, no trailing dot, not an IP address), or "".
func DomainProblem(s string) string {
	if s == "" {
		return "must not be empty"
	}
	if len(s) > MaxDomain {
		return "must be at most 253 characters"
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if p := LabelProblem(l); p != "" {
			return "must be a host name of dot-separated labels; label " + quote(l) + " " + p
		}
	}
	// No top-level domain is all digits, so this is an IPv4 address (or
	// part of one), which tenement cannot route by name.
	if allDigits(labels[len(labels)-1]) {
		return "must be a host name, not an IP address (its last label is all digits)"
	}
	return ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// TenementID maps a tenant and one of its instance ids to the tenement
// instance id "tenant--instance". Ids never contain "--", so the mapping is
// collision-free and reversible; TenementIDProblem checks that the result
// is one DNS label, as tenement's subdomain routing {id}.{process}.{domain}
// needs.
func TenementID(tenant, instance string) string { return tenant + Sep + instance }

// TenementIDProblem returns why a tenant's instance cannot be named on
// tenement (an invalid id, or a joined id longer than a label), or "".
func TenementIDProblem(tenant, instance string) string {
	if p := IDProblem(tenant); p != "" {
		return "tenant id " + quote(tenant) + " " + p
	}
	if p := IDProblem(instance); p != "" {
		return "instance id " + quote(instance) + " " + p
	}
	if id := TenementID(tenant, instance); len(id) > MaxLabel {
		return "tenement id " + id + " is longer than 63 characters"
	}
	return ""
}

// TenementName is the full tenement instance name "process:tenant--instance".
func TenementName(process, tenant, instance string) string {
	return process + ":" + TenementID(tenant, instance)
}

// SplitTenementName cuts a tenement instance name at its first ':' into
// the process and the instance id ("tenant--instance" for slum's names);
// a process name, a DNS label, has no ':'.
func SplitTenementName(name string) (process, id string) {
	process, id, _ = strings.Cut(name, ":")
	return process, id
}

// ParseTenementName reverses TenementName. ok is false for any name slum's
// naming could not have produced; such instances are never slum's.
func ParseTenementName(name string) (process, tenant, instance string, ok bool) {
	process, id, found := strings.Cut(name, ":")
	if !found || !IsLabel(process) {
		return "", "", "", false
	}
	tenant, instance, found = strings.Cut(id, Sep)
	if !found || TenementIDProblem(tenant, instance) != "" {
		return "", "", "", false
	}
	return process, tenant, instance, true
}

// quote quotes s as Go would, so that no character of a rejected name can
// break the message it appears in.
func quote(s string) string { return strconv.Quote(s) }
