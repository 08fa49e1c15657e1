package desired

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/names"
	"github.com/slum-fleet/slum/replica"
)

// The desired state's rules: what a valid server, tenant and instance is,
// and the defaults they get. The store checks every change with these
// before it writes it.

// DefaultDomain is the domain a server's subdomain routing uses when none is
// given: the host of its URL.
func DefaultDomain(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// ValidateServer checks a server as AddServer would, before it is added:
// a caller that must not create a database for a bad request checks first.
func ValidateServer(s slum.Server) error {
	NormalizeServer(&s)
	if err := ValidateID("server id", s.ID); err != nil {
		return err
	}
	if err := ValidateURL("url", s.URL); err != nil {
		return err
	}
	if err := ValidateRegion("region", s.Region); err != nil {
		return err
	}
	if err := ValidatePositive("capacity_mb", s.CapacityMB); err != nil {
		return err
	}
	if err := validateServerDomain(s.Domain); err != nil {
		return err
	}
	if err := ValidateToken(s.Token); err != nil {
		return err
	}
	switch s.State {
	case slum.ServerActive, slum.ServerCordoned, slum.ServerDraining:
	default:
		return invalid("state", string(s.State), "must be active, cordoned or draining")
	}
	return nil
}

// validateServerDomain accepts a host name or, since a URL's host may be
// one, an IP address.
func validateServerDomain(d string) error {
	if net.ParseIP(d) != nil {
		return nil
	}
	return ValidateDomain("domain", d)
}

// ValidateToken rejects tokens that could not travel in an HTTP header.
// The token itself is never part of the message.
func ValidateToken(tok string) error {
	if len(tok) > 4096 {
		return invalid("token", "(hidden)", "must be at most 4096 characters")
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] > '~' {
			return invalid("token", "(hidden)", "must be printable ASCII without spaces")
		}
	}
	return nil
}

// NormalizeServer fills in a server's defaults: its domain is its URL's
// host, its state active.
func NormalizeServer(s *slum.Server) {
	if s.Domain == "" {
		s.Domain = DefaultDomain(s.URL)
	}
	if s.State == "" {
		s.State = slum.ServerActive
	}
	s.URL = strings.TrimSuffix(s.URL, "/")
}

// ValidateTenant checks a tenant (its defaults filled in).
func ValidateTenant(t slum.Tenant) error {
	if err := ValidateID("tenant id", t.ID); err != nil {
		return err
	}
	if err := ValidateDomain("domain", t.Domain); err != nil {
		return err
	}
	if err := ValidateRegion("region", t.Region); err != nil {
		return err
	}
	switch t.Failover {
	case slum.FailoverMove, slum.FailoverNone:
	default:
		return invalid("failover", string(t.Failover), "must be move or none")
	}
	switch t.Serving {
	case slum.ServingOne, slum.ServingAll:
	default:
		return invalid("serving", string(t.Serving), "must be one or all")
	}
	return validateData(t)
}

// validateData checks a tenant's data policy and replica URL: a replicated
// tenant names its replica (slum revokes and hands over its lease there), a
// local one names none, and the URL is a concrete replica without
// credentials (they stay in the guard's environment).
func validateData(t slum.Tenant) error {
	switch t.Data {
	case slum.DataLocal:
		if t.Replica != "" {
			return invalid("replica", "(not shown)", "is for data: replicated only")
		}
		return nil
	case slum.DataReplicated:
	default:
		return invalid("data", string(t.Data), "must be local or replicated")
	}
	if t.Replica == "" {
		return invalid("replica", "", "is required with data: replicated (the s3:// URL its guard replicates to)")
	}
	if strings.ContainsAny(t.Replica, "{}") {
		return invalid("replica", t.Replica, "must name the tenant's own replica, not a template")
	}
	if _, err := replica.ParseLocation(t.Replica); err != nil {
		if fe, ok := err.(*slum.FieldError); ok {
			c := *fe
			c.Field = "replica"
			return &c
		}
		return err
	}
	return nil
}

// NormalizeTenant fills in the default policies.
func NormalizeTenant(t *slum.Tenant) {
	if t.Failover == "" {
		t.Failover = slum.FailoverMove
	}
	if t.Serving == "" {
		t.Serving = slum.ServingOne
	}
	if t.Data == "" {
		t.Data = slum.DataLocal
	}
}

// ValidateInstance checks an instance.
func ValidateInstance(i slum.Instance) error {
	if err := ValidateID("tenant id", i.TenantID); err != nil {
		return err
	}
	if err := ValidateID("instance id", i.ID); err != nil {
		return err
	}
	if err := ValidateLabel("process", i.Process); err != nil {
		return err
	}
	if id := names.TenementID(i.TenantID, i.ID); len(id) > MaxLabel {
		return invalid("instance id", i.ID, fmt.Sprintf("with tenant %s makes tenement id %s longer than 63 characters", i.TenantID, id))
	}
	if i.ServerID != "" {
		if err := ValidateID("server", i.ServerID); err != nil {
			return err
		}
	}
	if err := ValidatePositive("memory_mb", i.MemoryMB); err != nil {
		return err
	}
	switch i.DesiredState {
	case slum.StateRunning, slum.StateStopped:
	default:
		return invalid("state", string(i.DesiredState), "must be running or stopped")
	}
	switch i.Mode {
	case slum.ModeAlways, slum.ModeOnDemand:
	default:
		return invalid("mode", string(i.Mode), "must be always or on-demand")
	}
	return nil
}

// NewInstance is the instance spec asks for, with the defaults of a new
// one for what it does not give, checked.
func NewInstance(spec slum.InstanceSpec) (slum.Instance, error) {
	inst := slum.Instance{TenantID: spec.TenantID, ID: spec.ID, Process: spec.Process, ServerID: spec.ServerID,
		MemoryMB: spec.MemoryMB, Mode: spec.Mode, DesiredState: slum.StateRunning}
	if inst.MemoryMB == 0 {
		inst.MemoryMB = slum.DefaultMemoryMB
	}
	if inst.Mode == "" {
		inst.Mode = slum.ModeAlways
	}
	return inst, ValidateInstance(inst)
}

// ValidateAPIRole checks a role named by a user.
func ValidateAPIRole(field string, r slum.APIRole) error {
	for _, known := range slum.APIRoles {
		if r == known {
			return nil
		}
	}
	return invalid(field, string(r), "must be admin, read or router")
}

// ValidateTokenName checks a token's name: what it is for ("ci",
// "ann's laptop"), printable, at most 64 characters; empty is allowed.
func ValidateTokenName(field, name string) error {
	if !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return invalid(field, name, "must be printable text")
	}
	if utf8.RuneCountInString(name) > maxTokenName {
		return invalid(field, name, fmt.Sprintf("is longer than %d characters", maxTokenName))
	}
	return nil
}

// maxTokenName bounds a token's name.
const maxTokenName = 64
