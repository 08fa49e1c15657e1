package experiment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/slum-fleet/slum/clock"
)

// Target is a tenant the load reaches through the router.
type Target struct {
	Tenant string
	Domain string
}

// LoadOptions bound the load: a steady rate per tenant, a timeout per
// request, and at most MaxInFlight requests of a tenant at once.
type LoadOptions struct {
	RouterAddr  string // host:port of slum's router (loopback, or a fleet namespace)
	Targets     []Target
	Rate        float64 // requests a second, per tenant
	Timeout     time.Duration
	MaxInFlight int
	// Limit ends the load by itself after this long, whatever happens.
	Limit time.Duration
	Clock clock.Clock
	// Client sends the requests; nil: one of the load's own.
	Client *http.Client
}

// LoadStatus is the load's news so far, handed out as a value.
type LoadStatus struct {
	Sent, Failed int
	FirstFailure time.Time // when the first failed request was sent
	LastFailure  time.Time // when the latest failed request was sent
}

// Load sends steady HTTP load through the router at every target and
// records each request's outcome and latency. One goroutine per tenant
// paces the requests; each request runs in its own, and one collector owns
// the samples.
type Load struct {
	opt     LoadOptions
	cancel  context.CancelFunc
	results chan Sample
	done    chan []Sample
	wg      sync.WaitGroup
	status  atomic.Pointer[LoadStatus]
}

// StartLoad starts the load; Stop ends it and returns the samples.
func StartLoad(ctx context.Context, opt LoadOptions) *Load {
	if opt.Clock == nil {
		opt.Clock = clock.Real{}
	}
	if opt.MaxInFlight <= 0 {
		// Enough that a tenant whose every request hangs until the
		// timeout is never refused by the load itself.
		opt.MaxInFlight = int(math.Ceil(opt.Rate*opt.Timeout.Seconds())) + 16
	}
	if opt.Client == nil {
		opt.Client = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 256,
			DialContext: (&net.Dialer{Timeout: opt.Timeout}).DialContext, IdleConnTimeout: 30 * time.Second},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	lctx, cancel := context.WithCancel(ctx)
	if opt.Limit > 0 {
		var stop context.CancelFunc
		lctx, stop = context.WithTimeout(lctx, opt.Limit)
		go func() { <-lctx.Done(); stop() }()
	}
	l := &Load{opt: opt, cancel: cancel, results: make(chan Sample, 1024), done: make(chan []Sample, 1)}
	l.status.Store(&LoadStatus{})
	go l.collect()
	interval := time.Duration(float64(time.Second) / opt.Rate)
	for i, t := range opt.Targets {
		l.wg.Add(1)
		// Tenants' requests are spread over the interval, not sent in bursts.
		offset := interval * time.Duration(i) / time.Duration(len(opt.Targets))
		go l.pace(lctx, t, interval, offset)
	}
	return l
}

// Status is what the load has seen so far.
func (l *Load) Status() LoadStatus { return *l.status.Load() }

// Stop ends the load, waits for requests in flight and returns every
// sample.
func (l *Load) Stop() []Sample {
	l.cancel()
	l.wg.Wait()
	close(l.results)
	return <-l.done
}

func (l *Load) collect() {
	var out []Sample
	st := LoadStatus{}
	for s := range l.results {
		out = append(out, s)
		st.Sent++
		if !s.OK() {
			st.Failed++
			if st.FirstFailure.IsZero() || s.Sent.Before(st.FirstFailure) {
				st.FirstFailure = s.Sent
			}
			if s.Sent.After(st.LastFailure) {
				st.LastFailure = s.Sent
			}
		}
		cp := st
		l.status.Store(&cp)
	}
	l.done <- out
}

func (l *Load) pace(ctx context.Context, t Target, interval, offset time.Duration) {
	defer l.wg.Done()
	c := l.opt.Clock
	next := c.Now().Add(offset)
	inFlight := make(chan struct{}, l.opt.MaxInFlight)
	var reqs sync.WaitGroup
	defer reqs.Wait()
	for {
		if wait := next.Sub(c.Now()); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-c.After(wait):
			}
		} else if ctx.Err() != nil {
			return
		}
		next = next.Add(interval)
		select {
		case inFlight <- struct{}{}:
		default:
			l.results <- Sample{Tenant: t.Tenant, Sent: c.Now(), Outcome: OutcomeSaturated}
			continue
		}
		reqs.Add(1)
		sent := c.Now()
		go func() {
			defer reqs.Done()
			l.results <- l.send(t, sent)
			<-inFlight
		}()
	}
}

// send makes one request. It is not bound to the load's context: a request
// sent is let finish (or time out), so that stopping the load does not
// count as a failure.
func (l *Load) send(t Target, sent time.Time) Sample {
	c := l.opt.Clock
	s := Sample{Tenant: t.Tenant, Sent: sent}
	ctx, cancel := context.WithTimeout(context.Background(), l.opt.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+l.opt.RouterAddr+"/experiment", nil)
	if err != nil {
		s.Outcome = OutcomeError
		return s
	}
	req.Host = t.Domain
	resp, err := l.opt.Client.Do(req)
	if err != nil {
		s.Latency, s.Outcome = c.Now().Sub(s.Sent), classify(err)
		return s
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	s.Latency = c.Now().Sub(s.Sent)
	switch {
	case err != nil:
		s.Outcome = classify(err)
	case resp.StatusCode == http.StatusBadGateway && !bytes.HasPrefix(body, routerBadGateway):
		s.Outcome = OutcomeUpstream502
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		s.Outcome = strconv.Itoa(resp.StatusCode)
	default:
		s.Outcome, s.Copy = answeredBy(t.Tenant, body)
	}
	return s
}

// routerBadGateway starts the body of the router's own 502s: it could not
// reach a copy, or the copy broke off. Other 502s are the tenement
// server's own.
var routerBadGateway = []byte("502 bad gateway: ")

// answeredBy checks that the tenant's own app answered: the test app says
// which tenement instance it is ("t01--prod").
func answeredBy(tenant string, body []byte) (outcome, copy string) {
	var a struct {
		Tenant string `json:"tenant"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return OutcomeWrongTenant, ""
	}
	if t, _, ok := cutInstance(a.Tenant); !ok || t != tenant {
		return OutcomeWrongTenant, a.Tenant
	}
	return OutcomeOK, a.Tenant
}

// cutInstance splits a tenement id "tenant--instance".
func cutInstance(id string) (tenant, instance string, ok bool) {
	for i := 0; i+1 < len(id); i++ {
		if id[i] == '-' && id[i+1] == '-' {
			return id[:i], id[i+2:], true
		}
	}
	return "", "", false
}

func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return OutcomeTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return OutcomeRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, syscall.EPIPE):
		return OutcomeReset
	case errors.Is(err, os.ErrDeadlineExceeded):
		return OutcomeTimeout
	}
	return OutcomeError
}
