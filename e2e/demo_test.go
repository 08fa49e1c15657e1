package e2e

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/slum-fleet/slum/e2e/harness"
)

// TestDemo runs the README's main job as a user would, on the backend this
// machine supports (real tenement in CI), until the fleet converges.
func TestDemo(t *testing.T) {
	for _, backend := range []string{"auto", "simulator"} {
		t.Run(backend, func(t *testing.T) {
			if backend == "auto" {
				harness.RequireTen(t)
				harness.RequireNetns(t)
			}
			dir := t.TempDir()
			cmd := exec.Command(slumBin, "demo", "--dir", dir+"/demo", "--backend", backend, "--exit-when-converged")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("slum demo: %v\n%s", err, out)
			}
			text := string(out)
			want := []string{"applied", "5/5 settled", "api:alice--prod", "healthy", "export SLUM_DB=", "tenant move alice"}
			if backend == "auto" {
				want = append(want, "using real tenement servers", "kill -9 ")
			} else {
				want = append(want, "using SIMULATED tenement servers")
			}
			for _, w := range want {
				if !strings.Contains(text, w) {
					t.Fatalf("demo output lacks %q:\n%s", w, text)
				}
			}
			// The demo leaves a database the printed commands work on.
			st := exec.Command(slumBin, "--db", dir+"/demo/slum.db", "-o", "json", "tenant", "get", "alice")
			got, err := st.CombinedOutput()
			if err != nil || !strings.Contains(string(got), `"serving"`) {
				t.Fatalf("tenant get after the demo: %v\n%s", err, got)
			}
			// Through the router, alice's app names the server slum says
			// serves her: the demo's names are slum's.
			if backend == "auto" {
				var alice struct {
					Status struct{ Serving []struct{ Server string } }
				}
				if err := json.Unmarshal(got, &alice); err != nil || len(alice.Status.Serving) == 0 {
					t.Fatalf("alice: %v %s", err, got)
				}
				if want := `"server": "` + alice.Status.Serving[0].Server + `"`; !strings.Contains(text, "alice.example.com answers through the router: 200") || !strings.Contains(text, want) {
					t.Fatalf("the demo's answer from alice does not name %s:\n%s", want, text)
				}
			}
			// And nothing of its fleet is left running: no namespace of
			// its own (named after its process; other fleets may run on
			// this machine meanwhile).
			if backend == "auto" {
				ns, _ := exec.Command("ip", "netns", "list").Output()
				mine := "slum-" + strconv.FormatInt(int64(cmd.Process.Pid), 36) + "x"
				if strings.Contains(string(ns), mine) {
					t.Fatalf("namespaces left behind:\n%s", ns)
				}
			}
		})
	}
}
