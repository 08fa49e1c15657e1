package logs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/slum-fleet/slum/observed"
)

// Gather reads the lines the servers keep of q's copies, merged in time
// order. A copy that cannot be read is a notice; if none can be, Gather
// fails, saying why for each.
func Gather(ctx context.Context, f Fleet, q Query, opt Options) (Result, error) {
	if err := q.Validate(); err != nil {
		return Result{}, err
	}
	opt = opt.withDefaults()
	view, err := readFleet(ctx, f, q)
	if err != nil {
		return Result{}, err
	}
	res := Result{Notices: []Notice{}, Lines: []Line{}}
	if len(view.copies) == 0 {
		res.Notices = append(res.Notices, Notice{Time: opt.Clock.Now().UTC(), Message: "tenant " + q.Tenant + " has no copy on any server of the fleet"})
		return res, nil
	}
	lists := make([][]Line, len(view.copies))
	errs := make([]error, len(view.copies))
	var wg sync.WaitGroup
	for i, c := range view.copies {
		wg.Go(func() { lists[i], errs[i] = fetch(ctx, c, q, q.Lines, opt) })
	}
	wg.Wait()
	var why []string
	for i, err := range errs {
		if err != nil {
			c := view.copies[i].key.String()
			res.Notices = append(res.Notices, Notice{Time: opt.Clock.Now().UTC(), Copy: c, Message: "cannot read its lines: " + err.Error()})
			why = append(why, c+": "+err.Error())
		}
	}
	if len(why) == len(view.copies) {
		return Result{}, fmt.Errorf("no copy of %s could be read: %s", q.Tenant, strings.Join(why, "; "))
	}
	res.Lines = newest(merge(lists), q.Lines)
	return res, nil
}

// errNoToken: the fleet has no token for a server, so its lines cannot be
// asked for.
var errNoToken = errors.New("the fleet has no token for its server: set one with 'slum server update SERVER --token-file F'")

// clientOf makes a client of the copy's server.
func clientOf(c copySpec, opt Options) (*observed.Client, error) {
	if c.token == "" {
		return nil, errNoToken
	}
	return observed.NewClient(c.url, c.token, observed.WithHTTPClient(opt.HTTP), observed.WithTimeout(opt.Timeout))
}

// fetch reads the newest limit lines (0: all) the copy's server keeps of
// it that q selects, in time order, at most opt.MaxPerCopy.
func fetch(ctx context.Context, c copySpec, q Query, limit int, opt Options) ([]Line, error) {
	cl, err := clientOf(c, opt)
	if err != nil {
		return nil, err
	}
	es, err := cl.Logs(ctx, observed.LogQuery{LogFilter: c.filter(q.Level), Search: q.Grep, Limit: limit})
	if err != nil {
		return nil, err
	}
	return c.lines(es, q, opt.MaxPerCopy), nil
}

// keeps reports whether q keeps e (since counts whole milliseconds, as
// tenement's times do). The servers apply the level and the search to
// what they keep, but their streams ignore the search.
func (q Query) keeps(e observed.LogEntry) bool {
	return (q.Since.IsZero() || e.Timestamp >= q.Since.UnixMilli()) && (q.Level == "" || e.Level == q.Level) &&
		(q.Grep == "" || strings.Contains(e.Message, q.Grep))
}

// line labels one of the copy's lines.
func (c copySpec) line(e observed.LogEntry) Line {
	return Line{Time: e.Time().UTC(), Instance: c.key.instance, Server: c.key.server, Copy: c.key.String(),
		Level: e.Level, Message: e.Message, Gone: c.gone}
}

// lines labels the entries q keeps, in time order, the newest max.
func (c copySpec) lines(es []observed.LogEntry, q Query, max int) []Line {
	out := make([]Line, 0, len(es))
	for _, e := range es {
		if q.keeps(e) {
			out = append(out, c.line(e))
		}
	}
	sortCopy(out)
	return newest(out, max)
}
