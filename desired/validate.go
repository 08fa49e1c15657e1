package desired

import (
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/slum-fleet/slum/names"
)

// MaxLabel is the longest DNS label, and so the longest id or process name.
const MaxLabel = names.MaxLabel

// ValidateLabel checks a process name against DNS label rules.
func ValidateLabel(field, s string) error {
	if p := names.LabelProblem(s); p != "" {
		return invalid(field, s, p)
	}
	return nil
}

// ValidateID checks a server, tenant or instance id: a DNS label without
// "--", which slum reserves to join a tenant and an instance id into one
// tenement id (see TenementID).
func ValidateID(field, s string) error {
	if p := names.IDProblem(s); p != "" {
		return invalid(field, s, p)
	}
	return nil
}

// ValidateDomain checks a tenant's host name: dot-separated DNS labels, at
// most 253 characters, no trailing dot, not an IP address.
func ValidateDomain(field, s string) error {
	if p := names.DomainProblem(s); p != "" {
		return invalid(field, s, p)
	}
	return nil
}

// ValidateURL checks a tenement server URL: http or https with a host, and
// nothing after the host but an optional port (1 to 65535) and "/". A
// rejected URL is shown with any credentials in it hidden.
func ValidateURL(field, s string) error {
	shown := RedactURL(s)
	u, err := url.Parse(s)
	if err != nil {
		return invalid(field, shown, "is not a URL")
	}
	if u.User != nil {
		return invalid(field, shown, "must not hold credentials; give the token separately")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return invalid(field, shown, "must start with http:// or https://")
	}
	if u.Hostname() == "" {
		return invalid(field, shown, "has no host")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || u.Opaque != "" {
		return invalid(field, shown, "must be scheme://host[:port] with no path, query or fragment")
	}
	if host := u.Hostname(); net.ParseIP(host) == nil {
		if p := names.DomainProblem(host); p != "" {
			return invalid(field, shown, "has host "+strconv.Quote(host)+", which is neither an IP address nor a host name: it "+p)
		}
	}
	if strings.HasSuffix(u.Host, ":") {
		return invalid(field, shown, "has an empty port; leave out the ':' or give a port from 1 to 65535")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return invalid(field, shown, "has port "+p+"; a port is 1 to 65535")
		}
	}
	return nil
}

// RedactURL hides the user information (user name and password) of a URL,
// or of what was meant to be one, so that it can be shown in a message:
// everything up to the last '@' is hidden, but for a leading "scheme://".
func RedactURL(s string) string {
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return s
	}
	keep := 0
	if i := strings.Index(s, "://"); i >= 0 && i < at && isScheme(s[:i]) {
		keep = i + 3
	}
	return s[:keep] + "(hidden)" + s[at:]
}

// isScheme reports whether s is a URL scheme (RFC 3986: a letter, then
// letters, digits, '+', '-' and '.').
func isScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

// ValidateEnvName checks the name of an environment variable that holds
// a token: letters, digits and '_', not starting with a digit.
func ValidateEnvName(field, s string) error {
	if s == "" {
		return invalid(field, s, "must not be empty")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return invalid(field, s, "must be an environment variable name: letters, digits and '_', not starting with a digit")
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
