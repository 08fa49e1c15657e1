package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// bothWays runs a CLI scenario twice: on the database (--db), and on the
// same kind of database through the API (--api), where every cli() call
// goes through 'slum serve'. The scenario's expectations hold both ways:
// same output, same exit codes.
func bothWays(t *testing.T, scenario func(t *testing.T)) {
	t.Run("local", scenario)
	t.Run("remote", scenario)
}

// isRemote reports whether t is the remote half of a scenario.
func isRemote(t *testing.T) bool {
	return strings.HasSuffix(t.Name(), "/remote") || strings.Contains(t.Name(), "/remote/")
}

// served is a 'slum serve' over one database, with an admin token.
type served struct {
	url       string
	tokenFile string
}

var (
	servedMu sync.Mutex
	serving  = map[string]*served{} // by database path
)

var serveURL = regexp.MustCompile(`msg="serving the fleet API and dashboard" url=(http\S+)/ `)

// serveFor serves db's API for the rest of t (creating db, as a fleet
// behind an API always exists) and returns where, with an admin token.
func serveFor(t *testing.T, db string) *served {
	t.Helper()
	servedMu.Lock()
	s := serving[db]
	servedMu.Unlock()
	if s != nil {
		return s
	}
	if _, err := os.Stat(db); err != nil {
		expect(t, cliLocal(t, db, "", "init"), 0, "is ready", "")
	}
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	expect(t, cliLocal(t, db, "", "token", "create", "--role", "admin", "--name", "test", "--out", tokenFile), 0, "written to", "")
	cmd, url, _ := startProc(t, serveURL, "--db", db, "serve", "--listen", "127.0.0.1:0")
	s = &served{url: url, tokenFile: tokenFile}
	servedMu.Lock()
	serving[db] = s
	servedMu.Unlock()
	t.Cleanup(func() {
		servedMu.Lock()
		delete(serving, db)
		servedMu.Unlock()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return s
}
