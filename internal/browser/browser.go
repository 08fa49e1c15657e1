// Package browser drives a headless Chromium tab for slum's dashboard
// tests (cmd/slum's over simulated servers, e2e's over real tenement):
// finding the browser, polling the page and saving screenshots.
package browser

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// FindChromium is Debian's Chromium (or another Chrome) on PATH. In CI
// (CI=true) a missing browser fails the test; elsewhere it skips, loudly.
func FindChromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const why = "no Chromium on PATH (scripts/setup.sh installs Debian's chromium): the dashboard is not tested in a browser"
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	fmt.Fprintln(os.Stderr, "SKIP: "+why)
	t.Skip(why)
	return ""
}

// ArtifactDir is where screenshots go: $SLUM_TEST_ARTIFACTS, or the
// test's temporary directory.
func ArtifactDir(t testing.TB) string {
	if d := os.Getenv("SLUM_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// Tab is a headless Chromium tab.
type Tab struct {
	t   testing.TB
	ctx context.Context
	dir string
	// Prefix names the test's screenshots: Prefix + name + ".png".
	Prefix string
}

// Start runs Chromium at path for the test's duration.
func Start(t testing.TB, path string) *Tab {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 900),
		chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true), chromedp.Flag("disable-background-networking", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first action starts the browser: no deadline on it, as one
	// would stop the browser with it.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return &Tab{t: t, ctx: ctx, Prefix: "dashboard-"}
}

// Do runs steps, failing the test if they do not finish within 15 s.
func (b *Tab) Do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// Eval is what js evaluates to, as a string.
func (b *Tab) Eval(js string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("browser: %s: %v", js, err)
	}
	return v
}

// Until polls the page until js is truthy, and returns when it was; past
// limit it saves a "failed" screenshot and fails the test.
func (b *Tab) Until(what, js string, limit time.Duration) time.Time {
	b.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if b.Eval("String(!!("+js+"))") == "true" {
			return time.Now()
		}
		if time.Now().After(deadline) {
			b.Screenshot("failed")
			b.t.Fatalf("the page did not show %s within %s", what, limit)
		}
		time.Sleep(15 * time.Millisecond)
	}
}

// Screenshot saves the whole page as Prefix+name+".png" in ArtifactDir
// and returns its path ("" if it could not).
func (b *Tab) Screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	// Let the highlights of what just changed fade, for a picture of the
	// page as a person sees it a moment later.
	_ = chromedp.Do(ctx, chromedp.Sleep(1600*time.Millisecond))
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot: %v", err)
		return ""
	}
	if b.dir == "" {
		b.dir = ArtifactDir(b.t)
	}
	path := filepath.Join(b.dir, b.Prefix+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Errorf("screenshot: %v", err)
		return ""
	}
	b.t.Logf("screenshot: %s", path)
	return path
}
