package desired

import (
	"net"
	"net/url"
	"strings"
)

// MaxLabel is the longest DNS label, and so the longest id or process name.
const MaxLabel = 63

// labelProblem returns why s is not a DNS label (lower-case letters, digits
// and '-', 1 to 63 characters, not starting or ending with '-'), or "".
func labelProblem(s string) string {
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

// ValidateLabel checks a process name against DNS label rules.
func ValidateLabel(field, s string) error {
	if p := labelProblem(s); p != "" {
		return invalid(field, s, p)
	}
	return nil
}

// ValidateID checks a server, tenant or instance id: a DNS label without
// "--", which slum reserves to join a tenant and an instance id into one
// tenement id (see TenementID).
func ValidateID(field, s string) error {
	if err := ValidateLabel(field, s); err != nil {
		return err
	}
	if strings.Contains(s, "--") {
		return invalid(field, s, `must not contain "--" (slum joins tenant and instance ids with it)`)
	}
	return nil
}

// ValidateDomain checks a host name: dot-separated DNS labels, at most 253
// characters, no trailing dot.
func ValidateDomain(field, s string) error {
	if s == "" {
		return invalid(field, s, "must not be empty")
	}
	if len(s) > 253 {
		return invalid(field, s, "must be at most 253 characters")
	}
	for _, l := range strings.Split(s, ".") {
		if p := labelProblem(l); p != "" {
			return invalid(field, s, "must be a host name of dot-separated labels; label "+quote(l)+" "+p)
		}
	}
	return nil
}

// ValidateURL checks a tenement server URL: http or https with a host, and
// nothing after the host but an optional port and "/".
func ValidateURL(field, s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return invalid(field, s, "is not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return invalid(field, s, "must start with http:// or https://")
	}
	if u.Hostname() == "" {
		return invalid(field, s, "has no host")
	}
	if u.User != nil {
		return invalid(field, s, "must not hold credentials; give the token separately")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return invalid(field, s, "must be scheme://host[:port] with no path, query or fragment")
	}
	if p := u.Port(); p != "" {
		if _, err := net.LookupPort("tcp", p); err != nil {
			return invalid(field, s, "has a bad port")
		}
	}
	return nil
}

// ValidatePositive checks capacity and memory figures.
func ValidatePositive(field string, v int64) error {
	if v <= 0 {
		return invalid(field, itoa(v), "must be a positive integer")
	}
	return nil
}

// ValidateRegion allows the empty region (none) or a DNS label.
func ValidateRegion(field, s string) error {
	if s == "" {
		return nil
	}
	return ValidateLabel(field, s)
}

func quote(s string) string { return `"` + s + `"` }
