package experiment

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slum-fleet/slum/localfleet"
	"github.com/slum-fleet/slum/store"
)

// dataWriter writes to the data tenant through whichever server the
// controller says serves it, as the router would send it, and records
// every acknowledged write. Before its first write to a copy it reads
// what that copy holds: what it restored.
type dataWriter struct {
	members map[string]*localfleet.Member // by the fleet file's server id
	st      *store.Store
	tenant  string
	client  *http.Client

	mu       sync.Mutex
	acks     []Ack
	restored map[string]map[string]bool
	n        atomic.Int64
	stop     chan struct{}
	done     chan struct{}
}

func newDataWriter(members map[string]*localfleet.Member, st *store.Store, tenant string) *dataWriter {
	return &dataWriter{members: members, st: st, tenant: tenant, client: &http.Client{Timeout: time.Second},
		restored: map[string]map[string]bool{}}
}

// serving is the server the controller routes the tenant to, "" for none.
func (w *dataWriter) serving(ctx context.Context) string {
	ts, err := w.st.TenantStatus(ctx, w.tenant)
	if err != nil || len(ts.Serving) == 0 {
		return ""
	}
	return ts.Serving[0].Server
}

func (w *dataWriter) request(ctx context.Context, server, method, path string, body io.Reader) (*http.Response, error) {
	m := w.members[server]
	if m == nil {
		return nil, fmt.Errorf("no server %s", server)
	}
	req, err := http.NewRequestWithContext(ctx, method, m.URL+path, body)
	if err != nil {
		return nil, err
	}
	req.Host = w.tenant + "--prod." + dataProcess + "." + m.Domain
	return w.client.Do(req)
}

// bodies is every write a copy holds, by body.
func (w *dataWriter) bodies(ctx context.Context, server string) (map[string]bool, error) {
	resp, err := w.request(ctx, server, http.MethodGet, "/writes/bodies", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answers GET /writes/bodies with HTTP %d", server, resp.StatusCode)
	}
	var out struct{ Bodies []string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	m := make(map[string]bool, len(out.Bodies))
	for _, b := range out.Bodies {
		m[b] = true
	}
	return m, nil
}

func (w *dataWriter) start(ctx context.Context) {
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(w.done)
		var srv string
		var looked time.Time
		for {
			select {
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			default:
			}
			if time.Since(looked) > 100*time.Millisecond {
				srv, looked = w.serving(ctx), time.Now()
			}
			if srv == "" || !w.restoredOf(ctx, srv) {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			w.write(ctx, srv)
		}
	}()
}

// restoredOf reads what a copy holds before the first write to it; it
// reports whether that is known.
func (w *dataWriter) restoredOf(ctx context.Context, srv string) bool {
	w.mu.Lock()
	_, seen := w.restored[srv]
	w.mu.Unlock()
	if seen {
		return true
	}
	ids, err := w.bodies(ctx, srv)
	if err != nil {
		return false
	}
	w.mu.Lock()
	w.restored[srv] = ids
	w.mu.Unlock()
	return true
}

func (w *dataWriter) write(ctx context.Context, srv string) {
	body := fmt.Sprint("h", w.n.Add(1))
	resp, err := w.request(ctx, srv, http.MethodPost, "/writes", strings.NewReader(body))
	if err != nil {
		time.Sleep(20 * time.Millisecond)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		time.Sleep(20 * time.Millisecond)
		return
	}
	w.mu.Lock()
	w.acks = append(w.acks, Ack{Body: body, Server: srv, At: time.Now()})
	w.mu.Unlock()
	time.Sleep(10 * time.Millisecond)
}

// firstAckAway is the first write acknowledged by a copy on another
// server than old, at or after t0.
func (w *dataWriter) firstAckAway(old string, t0 time.Time) (Ack, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.acks {
		if a.Server != old && !a.At.Before(t0) {
			return a, true
		}
	}
	return Ack{}, false
}

// halt stops writing and returns every acknowledged write and what each
// copy held before the first write to it.
func (w *dataWriter) halt() ([]Ack, map[string]map[string]bool) {
	if w.stop != nil {
		close(w.stop)
		<-w.done
		w.stop = nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Ack(nil), w.acks...), w.restored
}

// orphanWriter writes to the old copy directly, from inside its server's
// namespace, bypassing tenement: it keeps trying after tenement dies, hangs
// or is cut off, as a client on the old copy's side would. It is the
// attempt at a second writer.
type orphanWriter struct {
	cmd    *exec.Cmd
	out    bytes.Buffer
	server string
}

// orphanScript writes "o1", "o2", ... to 127.0.0.1:PORT for SECONDS,
// printing each acknowledged one with its Unix time in milliseconds.
const orphanScript = `
import http.client, sys, time
port, until = int(sys.argv[1]), time.time() + float(sys.argv[2])
n = 0
while time.time() < until:
    n += 1
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        c.request("POST", "/writes", body=("o%d" % n).encode())
        r = c.getresponse()
        r.read()
        if r.status == 200:
            print(int(time.time() * 1000), "o%d" % n, flush=True)
    except Exception:
        time.sleep(0.02)
    time.sleep(0.01)
`

func startOrphanWriter(m *localfleet.Member, server string, port int, limit time.Duration) (*orphanWriter, error) {
	o := &orphanWriter{server: server, cmd: exec.Command("ip", "netns", "exec", m.Host.Netns, "python3", "-c", orphanScript,
		strconv.Itoa(port), strconv.Itoa(int(limit.Seconds())))}
	o.cmd.Stdout = &o.out
	if err := o.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start a writer in %s's namespace: %w", server, err)
	}
	return o, nil
}

// halt stops the writer and returns the writes it had acknowledged.
func (o *orphanWriter) halt() []Ack {
	if o == nil {
		return nil
	}
	_ = o.cmd.Process.Kill()
	_ = o.cmd.Wait()
	return parseOrphanAcks(o.out.Bytes(), o.server)
}

// parseOrphanAcks reads orphanScript's lines, "MILLIS BODY"; others are
// skipped.
func parseOrphanAcks(out []byte, server string) []Ack {
	var acks []Ack
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		ms, body, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseInt(ms, 10, 64)
		if !ok || err != nil || body == "" {
			continue
		}
		acks = append(acks, Ack{Body: body, Server: server, At: time.UnixMilli(n)})
	}
	sort.Slice(acks, func(i, j int) bool { return acks[i].At.Before(acks[j].At) })
	return acks
}
