package fleettest

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/slum-fleet/slum"
)

func APITokens(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	rec, secret, err := s.CreateAPIToken(ctx, slum.RoleAdmin, "ann's laptop")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, slum.APITokenPrefix) || len(secret) != len(slum.APITokenPrefix)+43 {
		t.Fatalf("token %q: want slum_ and 43 base64url characters (256 bits)", secret)
	}
	if rec.ID <= 0 || rec.Role != slum.RoleAdmin || rec.Name != "ann's laptop" || rec.Revoked() {
		t.Fatalf("record %+v", rec)
	}
	_, other, err := s.CreateAPIToken(ctx, slum.RoleRead, "")
	if err != nil {
		t.Fatal(err)
	}
	if other == secret {
		t.Fatal("two tokens are the same")
	}
	got, err := s.Store.VerifyAPIToken(ctx, secret)
	if err != nil || got.ID != rec.ID || got.Role != slum.RoleAdmin {
		t.Fatalf("verify: %+v %v", got, err)
	}

	// Only the digest is stored: the token's text is nowhere in the file.
	digest := sha256.Sum256([]byte(secret))
	if stored := string(s.Stored(t)); strings.Contains(stored, secret) || strings.Contains(stored, secret[len(slum.APITokenPrefix):]) ||
		!strings.Contains(stored, string(digest[:])) {
		t.Fatal("the database holds the token, or not its digest")
	}

	for _, bad := range []string{"", "slum_", secret[:len(secret)-1], secret + "x", "xxxx" + secret[4:], strings.ToUpper(secret[:5]) + secret[5:],
		slum.APITokenPrefix + strings.Repeat("A", 43)} {
		_, err := s.Store.VerifyAPIToken(ctx, bad)
		if !errors.Is(err, slum.ErrBadToken) {
			t.Errorf("verify %q: %v, want ErrBadToken", bad, err)
		}
		if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("the error shows the token: %v", err)
		}
	}

	revoked, err := s.RevokeAPIToken(ctx, rec.ID)
	if err != nil || !revoked.Revoked() {
		t.Fatalf("revoke: %+v %v", revoked, err)
	}
	if _, err := s.Store.VerifyAPIToken(ctx, secret); !errors.Is(err, slum.ErrBadToken) {
		t.Fatalf("a revoked token works: %v", err)
	}
	if _, err := s.RevokeAPIToken(ctx, rec.ID); !errors.Is(err, slum.ErrConflict) {
		t.Fatalf("revoke twice: %v", err)
	}
	if _, err := s.RevokeAPIToken(ctx, 99); !errors.Is(err, slum.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	if _, err := s.RevokeAPIToken(ctx, 0); !errors.Is(err, slum.ErrInvalid) {
		t.Fatalf("revoke 0: %v", err)
	}
	list, err := s.ListAPITokens(ctx)
	if err != nil || len(list) != 2 || !list[0].Revoked() || list[1].Revoked() || list[1].Role != slum.RoleRead {
		t.Fatalf("list: %+v %v", list, err)
	}
	evs, err := s.RecentEvents(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var text string
	for _, e := range evs {
		text += string(e.Object) + " " + string(e.Reason) + " " + e.Message + "\n"
	}
	if !strings.Contains(text, "api-token/1 Removed API token 1 (ann's laptop, admin) revoked") || strings.Contains(text, secret) {
		t.Fatalf("events:\n%s", text)
	}
}

func APITokenInputIsChecked(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	for _, tc := range []struct {
		role slum.APIRole
		name string
		want string
	}{
		{"root", "", `role "root": must be admin, read or router`},
		{"", "", `role "": must be admin, read or router`},
		{slum.RoleRead, "a\nb", `name "a\nb": must be printable text`},
		{slum.RoleRead, strings.Repeat("x", 65), "is longer than 64 characters"},
		{slum.RoleRead, "\xff", "must be printable text"},
	} {
		_, _, err := s.CreateAPIToken(ctx, tc.role, tc.name)
		if !errors.Is(err, slum.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("create %q %q: %v, want %s", tc.role, tc.name, err, tc.want)
		}
	}
	if list, _ := s.ListAPITokens(ctx); len(list) != 0 {
		t.Fatalf("a rejected token was made: %+v", list)
	}
}
