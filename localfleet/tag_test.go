package localfleet

import (
	"fmt"
	"strconv"
	"testing"
)

// TestTagsNameTheirProcess: every namespace and link of a fleet names the
// process that made it, whatever the process id and count, so that
// RemoveStale takes only a dead process's. Base 36 wrote an "x" inside
// some ids (11409 is "8sx"), and a live fleet was taken for a dead one's.
func TestTagsNameTheirProcess(t *testing.T) {
	for pid := 1; pid < 1<<22; pid += 1 + pid/64 {
		for _, count := range []int64{1, 9, 33, 1089, 35936} {
			tag := strconv.FormatInt(int64(pid), tagBase) + "x" + strconv.FormatInt(count, tagBase)
			for _, n := range []int{1, 12} {
				netns, link := fmt.Sprintf("slum-%s-%d", tag, n), fmt.Sprintf("sl%s%dh", tag, n)
				if got, ok := tagPID(netnsTag(netns)); !ok || got != pid {
					t.Fatalf("namespace %s: pid %d %v, want %d", netns, got, ok, pid)
				}
				lt, ok := linkTag(link)
				if got, pok := tagPID(lt); !ok || !pok || got != pid {
					t.Fatalf("link %s: tag %q, pid %d, want %d", link, lt, got, pid)
				}
			}
		}
	}
	for _, name := range []string{"slum-", "slum-abc-1", "slum-zzx1-1", "eth0", "slxh"} {
		if pid, ok := tagPID(netnsTag(name)); ok {
			t.Errorf("%s: read pid %d from no tag of slum's", name, pid)
		}
	}
}

// A by-hand start command survives the shell: plain words as they are,
// anything else single-quoted, a quote in it too.
func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"ten":             "ten",
		"/tmp/a-b/c.db":   "/tmp/a-b/c.db",
		"eu-1.fleet.test": "eu-1.fleet.test",
		"":                "''",
		"a b":             "'a b'",
		"it's":            `'it'\''s'`,
		"$(rm -rf /)":     "'$(rm -rf /)'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
	ten := &Ten{ten: "ten", Data: "/d/data", Opt: TenOptions{Dir: "/d", Port: 8080, Domain: "eu-1.fleet.test", Netns: "slum-x-1"}}
	if got, want := ten.StartCommand(), "cd /d && ip netns exec slum-x-1 ten --data-dir /d/data serve --port 8080 --domain eu-1.fleet.test"; got != want {
		t.Errorf("StartCommand() = %s\nwant %s", got, want)
	}
}
