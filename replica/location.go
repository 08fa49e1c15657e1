// Package replica is slum's access to a tenant's replica store: where a
// replica lives (a Litestream S3 replica URL), the credentials to reach it
// (taken from the environment as Litestream takes them), and the few
// conditional object operations that the single-writer lease kept beside
// the replica needs (create if absent, replace if unchanged).
package replica

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/slum-fleet/slum"
)

// DefaultRegion is the signing region when neither the URL nor AWS_REGION
// names one; S3-compatible servers accept it.
const DefaultRegion = "us-east-1"

// Location is one replica: a bucket and a path in it on an S3-compatible
// store. It is written as Litestream writes a replica URL:
//
//	s3://BUCKET/PATH?endpoint=http://HOST:PORT&region=REGION
//
// with endpoint and region optional (AWS S3 itself needs neither).
type Location struct {
	Bucket   string
	Path     string // no leading or trailing slash; may be empty
	Endpoint string // scheme://host[:port]; empty for AWS S3
	Region   string // empty: AWS_REGION, else DefaultRegion
	raw      string
}

// ParseLocation reads a Litestream S3 replica URL. Credentials in the URL
// are refused: they belong in the environment, never on a command line.
func ParseLocation(s string) (Location, error) {
	bad := func(reason string) (Location, error) {
		return Location{}, &slum.FieldError{Field: "replica URL", Value: redactURL(s), Reason: reason}
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("is not a URL")
	}
	if u.Scheme != "s3" {
		return bad("must be an s3:// URL (s3://BUCKET/PATH?endpoint=...)")
	}
	if u.User != nil {
		return bad("must not carry credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment")
	}
	if u.Host == "" {
		return bad("names no bucket")
	}
	if strings.Contains(u.Path, "//") || strings.Contains(u.Path, "/../") || strings.HasSuffix(u.Path, "/..") {
		return bad("has an empty or '..' path segment")
	}
	loc := Location{Bucket: u.Host, Path: strings.Trim(u.Path, "/"), raw: s}
	q := u.Query()
	for _, k := range slices.Sorted(maps.Keys(q)) { // the same error for the same text
		switch k {
		case "endpoint", "region":
		default:
			// Litestream takes more options; the guard reads the lease
			// with these only, so a replica that needs others is refused
			// rather than reached differently by the two.
			return bad(fmt.Sprintf("has the option %q, which slum does not support (endpoint and region only)", k))
		}
	}
	if ep := q.Get("endpoint"); ep != "" {
		if !strings.Contains(ep, "://") {
			ep = "http://" + ep
		}
		eu, err := url.Parse(ep)
		if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" || (eu.Path != "" && eu.Path != "/") {
			return bad("has an endpoint that is not http(s)://HOST[:PORT]")
		}
		loc.Endpoint = eu.Scheme + "://" + eu.Host
	}
	loc.Region = q.Get("region")
	return loc, nil
}

// String is the URL as given.
func (l Location) String() string { return l.raw }

// Key is the object key of name inside the replica's path.
func (l Location) Key(name string) string {
	if l.Path == "" {
		return name
	}
	return l.Path + "/" + name
}

// Canonical is s3://BUCKET/PATH without the options: the same replica
// reached through any endpoint.
func (l Location) Canonical() string { return "s3://" + l.Bucket + "/" + l.Path }

// Plain reports whether the endpoint is plain HTTP (no TLS).
func (l Location) Plain() bool { return strings.HasPrefix(l.Endpoint, "http://") }

// ExpandTenant fills {tenant} in a replica URL template with the tenant of
// a tenement instance id: slum names instances TENANT--INSTANCE, so every
// copy of one tenant (alice--prod, alice--backup) shares one replica. An id
// without "--" is the tenant itself.
func ExpandTenant(template, instanceID string) string {
	return strings.ReplaceAll(template, "{tenant}", TenantOf(instanceID))
}

// TenantOf is the tenant part of a slum instance id.
func TenantOf(instanceID string) string {
	if i := strings.Index(instanceID, "--"); i > 0 {
		return instanceID[:i]
	}
	return instanceID
}

// redactURL drops any user info, so that a URL quoted in an error never
// shows a secret someone put in it.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if i := strings.Index(s, "@"); i >= 0 && strings.Contains(s[:i], ":") {
			return "(a URL with credentials, not shown)"
		}
		return s
	}
	u.User = url.User("REDACTED")
	return u.String()
}
