package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/slum-fleet/slum/api/wire"
	"github.com/slum-fleet/slum/routes"
)

// WatchOptions say what a watch streams and where it starts.
type WatchOptions struct {
	// Since is the ID of the last message a previous watch delivered:
	// the watch resumes after it (or starts with a reset when the API no
	// longer has everything since). Empty: start with a reset.
	Since string
	// Kinds limits the objects streamed (wire.ObjEvent: the event log);
	// nil streams everything the token may see.
	Kinds []wire.ObjectKind
	// Idle is how long a silent stream is trusted; the API sends a
	// keepalive every 15 s. Default: 45 s.
	Idle time.Duration
}

// Message is one message of the watch: a reset (the whole fleet) or a
// batch of changes. A message with neither only moves ID on.
type Message struct {
	ID    string // resume after this message with WatchOptions.Since
	Reset *wire.Reset
	Batch *wire.Batch
}

// maxMessage bounds one message of the watch (a reset of a large fleet).
const maxMessage = 512 << 20

// Watch streams the fleet's changes to handle until ctx ends, the stream
// breaks, or handle fails; it returns why. A caller that keeps the last
// Message.ID resumes with it where it left off.
func (c *Client) Watch(ctx context.Context, opt WatchOptions, handle func(Message) error) error {
	idle := opt.Idle
	if idle <= 0 {
		idle = 45 * time.Second
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errIdle := fmt.Errorf("the watch stream was silent for %s", idle)
	watchdog := time.AfterFunc(idle, func() { cancel(errIdle) })
	defer watchdog.Stop()

	u := *c.base
	u.Path = path("watch")
	if len(opt.Kinds) > 0 {
		ks := make([]string, len(opt.Kinds))
		for i, k := range opt.Kinds {
			ks[i] = string(k)
		}
		u.RawQuery = url.Values{"kinds": {strings.Join(ks, ",")}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("User-Agent", c.userAgent)
	if opt.Since != "" {
		req.Header.Set("Last-Event-ID", opt.Since)
	}
	resp, err := c.stream.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return cause
		}
		return fmt.Errorf("fleet API %s: %w", c.base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp)
	}
	err = readEvents(resp.Body, func(ev sseEvent) error {
		watchdog.Reset(idle)
		if ev.data == nil && ev.id == "" {
			return nil // a keepalive
		}
		m := Message{ID: ev.id}
		switch ev.name {
		case wire.EventReset:
			m.Reset = new(wire.Reset)
			if err := json.Unmarshal(ev.data, m.Reset); err != nil {
				return fmt.Errorf("watch: a reset that is not valid: %w", err)
			}
		case wire.EventChanges:
			m.Batch = new(wire.Batch)
			if err := json.Unmarshal(ev.data, m.Batch); err != nil {
				return fmt.Errorf("watch: a batch that is not valid: %w", err)
			}
		case "":
			if ev.data != nil {
				return nil // not ours
			}
		default:
			return nil // a newer API's message: skip it
		}
		return handle(m)
	})
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	if errors.Is(err, io.EOF) {
		return errors.New("the API closed the watch stream")
	}
	return err
}

type sseEvent struct {
	id   string
	name string
	data []byte // nil when the message had no data lines
}

// readEvents parses a stream of server-sent events. Every line counts as a
// sign of life, so comments (keepalives) reach fn as empty events.
func readEvents(r io.Reader, fn func(sseEvent) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var ev sseEvent
	var data bytes.Buffer
	hasData := false
	for {
		line, err := readLine(br)
		if err != nil {
			return err
		}
		switch {
		case len(line) == 0:
			if hasData {
				ev.data = bytes.TrimSuffix(data.Bytes(), []byte("\n"))
			}
			if err := fn(ev); err != nil {
				return err
			}
			ev, hasData = sseEvent{}, false
			data.Reset()
		case line[0] == ':':
			if err := fn(sseEvent{}); err != nil {
				return err
			}
		default:
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "id":
				ev.id = string(value)
			case "event":
				ev.name = string(value)
			case "data":
				if data.Len()+len(value) > maxMessage {
					return fmt.Errorf("watch: a message larger than %d bytes", maxMessage)
				}
				data.Write(value)
				data.WriteByte('\n')
				hasData = true
			}
		}
	}
}

// readLine reads one line of any length (without its end).
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > maxMessage+64 {
			return nil, fmt.Errorf("watch: a line longer than %d bytes", maxMessage)
		}
		line = append(line, chunk...)
		if err == nil {
			return bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r")), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

// FollowRoutes hands set a new route table each time the fleet's routes
// change, from the watch, until ctx ends. A broken stream is reopened
// (after a pause that grows to 10 s) from where it broke, so nothing is
// missed and the whole table is not sent again; errors go to onErr, and
// the last table stays in use meanwhile.
func (c *Client) FollowRoutes(ctx context.Context, set func(*routes.Table), onErr func(error)) {
	var f routeFollower
	pause := 250 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := c.Watch(ctx, WatchOptions{Since: f.last, Kinds: []wire.ObjectKind{wire.ObjRoute}}, func(m Message) error {
			if t := f.take(m); t != nil {
				set(t)
			}
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		onErr(fmt.Errorf("follow the fleet's routes: %w", err))
		if time.Since(start) > 30*time.Second {
			pause = 250 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause + rand.N(pause/2)):
		}
		pause = min(2*pause, 10*time.Second)
	}
}

// routeFollower keeps the route table a watch of routes describes.
type routeFollower struct {
	last     string
	revision int64
	byDomain map[string]routes.Route
}

// take applies a message; it returns the new table when the routes (or
// their revision) changed, else nil.
func (f *routeFollower) take(m Message) *routes.Table {
	if m.ID != "" {
		f.last = m.ID
	}
	changed := false
	switch {
	case m.Reset != nil:
		f.byDomain = map[string]routes.Route{}
		for _, o := range m.Reset.Objects {
			f.put(o)
		}
		f.revision, changed = m.Reset.Revision, true
	case m.Batch != nil:
		for _, ch := range m.Batch.Changes {
			if ch.Kind != wire.ObjRoute {
				continue
			}
			if ch.Op == wire.OpDelete {
				delete(f.byDomain, ch.ID)
			} else {
				f.put(ch)
			}
			changed = true
		}
		if m.Batch.Revision > f.revision {
			f.revision, changed = m.Batch.Revision, true
		}
	}
	if !changed || f.byDomain == nil {
		return nil
	}
	rs := make([]routes.Route, 0, len(f.byDomain))
	for _, r := range f.byDomain {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].Domain < rs[j].Domain })
	return routes.New(f.revision, rs)
}

func (f *routeFollower) put(ch wire.Change) {
	if ch.Kind != wire.ObjRoute {
		return
	}
	var r routes.Route
	if json.Unmarshal(ch.Object, &r) == nil {
		f.byDomain[ch.ID] = r
	}
}
