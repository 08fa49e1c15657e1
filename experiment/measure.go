package experiment

import (
	"math"
	"sort"
	"strconv"
	"time"
)

// Outcomes of a request. Anything else is the HTTP status of a failed
// answer ("503").
const (
	OutcomeOK          = "ok"
	OutcomeTimeout     = "timeout"      // no answer within the request timeout
	OutcomeRefused     = "refused"      // the router did not accept the connection
	OutcomeReset       = "reset"        // the connection broke mid-request
	OutcomeError       = "error"        // another transport error
	OutcomeWrongTenant = "wrong-tenant" // answered by another tenant's app: misrouted
	OutcomeSaturated   = "saturated"    // not sent: too many requests of the tenant in flight
	// OutcomeUpstream502 is a 502 the tenement server answered itself
	// (its proxy could not reach the instance's app), passed on by the
	// router; the router's own 502s (no copy could be reached) are "502".
	OutcomeUpstream502 = "502-tenement"
)

// Sample is one request sent through the router, as its client saw it.
type Sample struct {
	Tenant  string
	Sent    time.Time
	Latency time.Duration
	Outcome string
	// Copy is the tenement instance id that answered ("t01--prod").
	Copy string
}

// OK reports whether the request was served by the tenant's own app.
func (s Sample) OK() bool { return s.Outcome == OutcomeOK }

// Done is when the answer (or the failure) came.
func (s Sample) Done() time.Time { return s.Sent.Add(s.Latency) }

// ListRound is one look at what the servers run: each asked server's
// instance names as it listed them. Servers not asked, or not answering,
// are absent.
type ListRound struct {
	At    time.Time
	Lists map[string][]string
}

// Mark is a moment worth showing on a trial's timeline.
type Mark struct {
	At      time.Time
	Kind    MarkKind
	Subject string // a server, an instance
}

// MarkKind is what a Mark records.
type MarkKind string

const (
	MarkFault          MarkKind = "fault"
	MarkDetected       MarkKind = "detected"          // the controller declared a server dead
	MarkFailover       MarkKind = "failover"          // an instance was placed elsewhere
	MarkReplaced       MarkKind = "replaced"          // a displaced instance runs again (tenement's list)
	MarkServing        MarkKind = "serving-changed"   // the controller changed who serves a tenant
	MarkServedAgain    MarkKind = "served-again"      // every tenant served through the router
	MarkHeld           MarkKind = "held"              // the controller held a failover back
	MarkHealed         MarkKind = "healed"            // the fault was undone
	MarkBack           MarkKind = "back"              // the server is online again (controller's view)
	MarkFenced         MarkKind = "fenced"            // a stale copy was stopped
	MarkControllerKill MarkKind = "controller-killed" // the controller got SIGKILL
	MarkControllerBack MarkKind = "controller-back"   // another controller holds the lease
)

// Record is everything observed during one trial, raw. Measure turns it
// into figures; it is kept apart so that the measurement is a pure
// function of what was seen.
type Record struct {
	Fault   Fault
	Trial   int
	Seed    int64
	Victims []string
	FaultAt time.Time
	// HealAt is when the fault was undone; zero when it never was (a
	// restart needs no healing).
	HealAt time.Time
	// LoadStart and LoadEnd bound the load.
	LoadStart, LoadEnd time.Time
	// Displaced maps the tenement name of each instance the fault took
	// down ("api:t01--prod") to its tenant.
	Displaced map[string]string
	// Warm tenants have a running copy on a server the fault spares: they
	// should not lose a request once the fault is detected.
	Warm map[string]bool
	// Affected tenants have a copy on a server the fault hits; the
	// others' failures are the fleet's background noise.
	Affected map[string]bool
	// Down tenants are expected to stay down (every copy on a victim and
	// failover none): they are left out of "served again".
	Down map[string]bool
	// AllowVictim: a displaced instance running again on a victim counts
	// as replaced (a restarted server runs its instances again).
	AllowVictim bool
	// ListFrom: a victim's lists taken before then do not count as
	// running again (a restarting server lists what it is about to lose
	// until its restart is done).
	ListFrom time.Time
	// DeadAt: the earliest sign that the controller declared a victim
	// dead (its status, its events). Zero: it never did.
	DeadAt time.Time
	// FailoverAt: the first instance placed away from a victim.
	FailoverAt time.Time
	// HeldAt: the controller reported that it held a failover back.
	HeldAt time.Time
	// BackAt: every victim online again after HealAt, by the controller.
	BackAt time.Time
	// ReturnGrace: how long after BackAt a copy may still run on two
	// servers (one controller poll).
	ReturnGrace time.Duration
	// ControllerKilledAt and ControllerBackAt: the controller's SIGKILL and
	// the moment another held the lease.
	ControllerKilledAt, ControllerBackAt time.Time
	Rounds                               []ListRound
	Samples                              []Sample
	Marks                                []Mark
	// Unplaceable lists displaced instances the controller could place
	// nowhere (left out of Displaced).
	Unplaceable []string
	// Moved lists the instances whose placement changed during the trial.
	Moved []string
	// LeftBehind lists what the trial found left over at its end.
	LeftBehind []string
	// Err says why the trial could not be run to its end.
	Err string
}

// Millis is a duration, written in JSON as milliseconds.
type Millis time.Duration

// MarshalJSON writes the duration in milliseconds.
func (m Millis) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, math.Round(float64(m)/1e5)/10, 'f', -1, 64), nil
}

// UnmarshalJSON reads milliseconds.
func (m *Millis) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	*m = Millis(v * 1e6)
	return nil
}

// D is the duration.
func (m Millis) D() time.Duration { return time.Duration(m) }

func since(t0, t time.Time) *Millis {
	if t.IsZero() {
		return nil
	}
	m := Millis(t.Sub(t0))
	return &m
}

// Trial is one trial's figures, every time measured from the fault.
type Trial struct {
	Fault   Fault     `json:"fault"`
	Trial   int       `json:"trial"`
	Seed    int64     `json:"seed"`
	Victims []string  `json:"victims"`
	FaultAt time.Time `json:"fault_at"`
	// Detected: the controller declared the server dead.
	Detected *Millis `json:"detected_ms"`
	// FailoverStarted: the first instance was placed elsewhere.
	FailoverStarted *Millis `json:"failover_started_ms"`
	// Held: the controller reported holding the failover back.
	Held *Millis `json:"held_ms"`
	// Displaced instances had to run again; Replaced is when the last of
	// them was listed running by a tenement server (ReplacedEach, each).
	Displaced    int               `json:"displaced"`
	Unplaceable  []string          `json:"unplaceable"`
	Replaced     *Millis           `json:"replaced_ms"`
	ReplacedEach map[string]Millis `json:"replaced_each_ms"`
	// ServedAgain: from then on the router served every tenant (that is
	// not expected to stay down) until the fault was undone, but for lone
	// failed requests between answered ones (blips, still counted as
	// failed).
	ServedAgain *Millis `json:"served_again_ms"`
	// Healed and Back: the fault undone, and the server online again.
	Healed *Millis `json:"healed_ms"`
	Back   *Millis `json:"back_ms"`
	// ServedAfterHeal: every tenant served again, counted from the heal
	// (what a partition costs).
	ServedAfterHeal *Millis `json:"served_after_heal_ms"`

	Requests int `json:"requests"`
	// Failed counts requests that failed from the fault on; Failures
	// splits them by outcome (an HTTP status, timeout, refused, ...).
	Failed   int            `json:"failed"`
	Failures map[string]int `json:"failures"`
	// FailedBefore counts failures before the fault (should be none).
	FailedBefore int `json:"failed_before_fault"`
	// UnaffectedFailed counts the failures, from the fault on, of tenants
	// with no copy on a server the fault hit: what fails anyway.
	UnaffectedFailed int `json:"unaffected_failed"`
	// WarmFailedAfterDetection counts requests of tenants with a warm
	// spare, sent after the detection, that failed.
	WarmFailedAfterDetection int `json:"warm_failed_after_detection"`
	// WarmAfterDetection splits them by outcome.
	WarmAfterDetection map[string]int `json:"warm_failed_after_detection_by_outcome"`
	// FailedAfterHeal counts failures of requests sent once the fault was
	// undone (fencing must not cost requests).
	FailedAfterHeal  int      `json:"failed_after_heal"`
	LongestGap       Millis   `json:"longest_gap_ms"`
	LongestGapTenant string   `json:"longest_gap_tenant"`
	Tenants          []Tenant `json:"tenants"`

	// OnTwoServers lists instances tenement servers listed on two servers
	// at once; AfterReturn counts those still seen so one controller poll
	// after the server came back.
	OnTwoServers            []Duplicate `json:"on_two_servers"`
	OnTwoServersAfterReturn int         `json:"on_two_servers_after_return"`
	// Fenced counts the instances whose stale copies the controller
	// stopped after the return.
	Fenced int `json:"fenced"`
	// Moved lists instances whose placement changed.
	Moved []string `json:"moved"`
	// ControllerKilled and ControllerBack (controller-kill): the SIGKILL,
	// and another controller holding the lease.
	ControllerKilled *Millis `json:"controller_killed_ms,omitempty"`
	ControllerBack   *Millis `json:"controller_back_ms,omitempty"`
	// RunningAtControllerKill counts the displaced instances already
	// running elsewhere when the controller was killed: less than
	// Displaced means it died mid-failover.
	RunningAtControllerKill int `json:"running_at_controller_kill,omitempty"`

	// Data is a data trial's figures (RunData); nil for the others.
	Data *DataTrial `json:"data,omitempty"`

	LeftBehind []string  `json:"left_behind"`
	Marks      []MarkAt  `json:"marks"`
	FailedReqs []Request `json:"failed_requests"`
	Error      string    `json:"error,omitempty"`
}

// Tenant is one tenant's figures in a trial.
type Tenant struct {
	Tenant   string `json:"tenant"`
	Warm     bool   `json:"warm_spare"`
	Down     bool   `json:"expected_down,omitempty"`
	Requests int    `json:"requests"`
	Failed   int    `json:"failed"`
	// Blips counts lone failures (the requests before and after were
	// answered): failed, yet no outage, so they do not set ServedAgain.
	Blips int `json:"blips"`
	// ServedAgain: nil when it was never interrupted or never served again
	// (Interrupted tells which).
	Interrupted bool    `json:"interrupted"`
	ServedAgain *Millis `json:"served_again_ms"`
	LongestGap  Millis  `json:"longest_gap_ms"`
	// Latency of its successful requests.
	P50 Millis `json:"latency_p50_ms"`
	P99 Millis `json:"latency_p99_ms"`
	Max Millis `json:"latency_max_ms"`
	// Copies lists who answered, in turn ("t01--prod", "t01--backup").
	Copies []string `json:"copies"`
}

// Duplicate is an instance seen on two servers at once.
type Duplicate struct {
	Name    string   `json:"name"`
	Servers []string `json:"servers"`
	First   Millis   `json:"first_ms"`
	Last    Millis   `json:"last_ms"`
	// For is how long it was seen so: from the first round to the last.
	For Millis `json:"for_ms"`
}

// MarkAt is a Mark, timed from the fault.
type MarkAt struct {
	At      Millis   `json:"at_ms"`
	Kind    MarkKind `json:"kind"`
	Subject string   `json:"subject,omitempty"`
}

// Request is one failed request, timed from the fault.
type Request struct {
	Tenant  string `json:"tenant"`
	Sent    Millis `json:"sent_ms"`
	Latency Millis `json:"latency_ms"`
	Outcome string `json:"outcome"`
}

// Measure turns what a trial recorded into its figures.
func Measure(r Record) Trial {
	t0 := r.FaultAt
	tr := Trial{Fault: r.Fault, Trial: r.Trial, Seed: r.Seed, Victims: r.Victims, FaultAt: t0,
		Detected: since(t0, r.DeadAt), FailoverStarted: since(t0, r.FailoverAt), Held: since(t0, r.HeldAt),
		Healed: since(t0, r.HealAt), Back: since(t0, r.BackAt),
		ControllerKilled: since(t0, r.ControllerKilledAt), ControllerBack: since(t0, r.ControllerBackAt),
		Failures: map[string]int{}, WarmAfterDetection: map[string]int{}, ReplacedEach: map[string]Millis{}, Moved: r.Moved, LeftBehind: r.LeftBehind,
		Unplaceable: r.Unplaceable,
		Error:       r.Err}
	if tr.Moved == nil {
		tr.Moved = []string{}
	}
	if tr.LeftBehind == nil {
		tr.LeftBehind = []string{}
	}
	if tr.Unplaceable == nil {
		tr.Unplaceable = []string{}
	}
	tr.Displaced = len(r.Displaced)
	replaced := firstListed(r)
	var last time.Time
	for name := range r.Displaced {
		if at, ok := replaced[name]; ok {
			tr.ReplacedEach[name] = Millis(at.Sub(t0))
			if at.After(last) {
				last = at
			}
		}
	}
	if !r.ControllerKilledAt.IsZero() {
		for _, at := range replaced {
			if at.Before(r.ControllerKilledAt) {
				tr.RunningAtControllerKill++
			}
		}
	}
	if len(r.Displaced) > 0 && len(tr.ReplacedEach) == len(r.Displaced) {
		tr.Replaced = since(t0, last)
	}
	measureLoad(r, &tr)
	measureDuplicates(r, &tr)
	fenced := map[string]bool{}
	for _, m := range r.Marks {
		if m.Kind == MarkFenced && !m.At.Before(r.HealAt) && !r.HealAt.IsZero() && !fenced[m.Subject] {
			fenced[m.Subject] = true
			tr.Fenced++
		}
		tr.Marks = append(tr.Marks, MarkAt{At: Millis(m.At.Sub(t0)), Kind: m.Kind, Subject: m.Subject})
	}
	if tr.Replaced != nil {
		tr.Marks = append(tr.Marks, MarkAt{At: *tr.Replaced, Kind: MarkReplaced, Subject: "every displaced instance"})
	}
	if tr.ServedAgain != nil && *tr.ServedAgain > 0 {
		tr.Marks = append(tr.Marks, MarkAt{At: *tr.ServedAgain, Kind: MarkServedAgain, Subject: "every tenant"})
	}
	sort.SliceStable(tr.Marks, func(i, j int) bool { return tr.Marks[i].At < tr.Marks[j].At })
	return tr
}

// firstListed finds, for each displaced instance, the first round from the
// fault on in which a server it may run on listed it.
func firstListed(r Record) map[string]time.Time {
	victim := map[string]bool{}
	for _, v := range r.Victims {
		victim[v] = true
	}
	out := map[string]time.Time{}
	for _, round := range r.Rounds {
		if round.At.Before(r.FaultAt) {
			continue
		}
		for server, names := range round.Lists {
			if victim[server] && (!r.AllowVictim || round.At.Before(r.ListFrom)) {
				continue
			}
			for _, n := range names {
				if _, want := r.Displaced[n]; !want {
					continue
				}
				if at, seen := out[n]; !seen || round.At.Before(at) {
					out[n] = round.At
				}
			}
		}
	}
	return out
}

// measureLoad works out what the router's clients saw.
func measureLoad(r Record, tr *Trial) {
	t0 := r.FaultAt
	windowEnd := r.HealAt
	if windowEnd.IsZero() {
		windowEnd = r.LoadEnd
	}
	byTenant := map[string][]Sample{}
	for _, s := range r.Samples {
		byTenant[s.Tenant] = append(byTenant[s.Tenant], s)
	}
	names := make([]string, 0, len(byTenant))
	for n := range byTenant {
		names = append(names, n)
	}
	sort.Strings(names)
	var served time.Time
	servedAll := true
	var afterHeal time.Time
	afterHealAll := true
	for _, name := range names {
		ss := byTenant[name]
		sort.Slice(ss, func(i, j int) bool { return ss[i].Sent.Before(ss[j].Sent) })
		tf, lastFail, lastFailHealed := measureTenant(r, tr, name, ss, windowEnd)
		if !tf.Down {
			switch {
			case !tf.Interrupted:
			case tf.ServedAgain == nil:
				servedAll = false
			case t0.Add(tf.ServedAgain.D()).After(served):
				served = t0.Add(tf.ServedAgain.D())
			}
		}
		// Down when the fault was undone, or failing after: when was it
		// served again, counted from the heal?
		if !r.HealAt.IsZero() && ((tf.Interrupted && tf.ServedAgain == nil) || !lastFailHealed.IsZero()) {
			from := lastFailHealed
			if from.IsZero() {
				from = lastFail
			}
			if at := servedAfter(ss, from, r.LoadEnd.Add(time.Nanosecond), r.HealAt); at == nil {
				afterHealAll = false
			} else if t := r.HealAt.Add(at.D()); t.After(afterHeal) {
				afterHeal = t
			}
		}
		if tf.LongestGap > tr.LongestGap {
			tr.LongestGap, tr.LongestGapTenant = tf.LongestGap, name
		}
		tr.Tenants = append(tr.Tenants, tf)
	}
	if tr.FailedReqs == nil {
		tr.FailedReqs = []Request{}
	}
	if servedAll {
		if served.IsZero() {
			served = t0
		}
		tr.ServedAgain = since(t0, served)
	}
	if !r.HealAt.IsZero() && afterHealAll {
		if afterHeal.IsZero() {
			afterHeal = r.HealAt
		}
		tr.ServedAfterHeal = since(r.HealAt, afterHeal)
	}
}

// measureTenant works out what one tenant's requests (ss, in the order
// sent) saw, counting its failures into tr. It returns the tenant's
// figures and its last failures before and after the fault was undone.
func measureTenant(r Record, tr *Trial, name string, ss []Sample, windowEnd time.Time) (tf Tenant, lastFail, lastFailHealed time.Time) {
	t0 := r.FaultAt
	tf = Tenant{Tenant: name, Warm: r.Warm[name], Down: r.Down[name], Requests: len(ss), Copies: []string{}}
	var lats []time.Duration
	for i, s := range ss {
		tr.Requests++
		if s.OK() {
			lats = append(lats, s.Latency)
			if n := len(tf.Copies); n == 0 || tf.Copies[n-1] != s.Copy {
				tf.Copies = append(tf.Copies, s.Copy)
			}
			continue
		}
		if s.Done().Before(t0) {
			tr.FailedBefore++
			continue
		}
		tf.Failed++
		tr.Failed++
		if !r.Affected[name] {
			tr.UnaffectedFailed++
		}
		tr.Failures[s.Outcome]++
		tr.FailedReqs = append(tr.FailedReqs, Request{Tenant: name, Sent: Millis(s.Sent.Sub(t0)), Latency: Millis(s.Latency), Outcome: s.Outcome})
		if tf.Warm && !r.DeadAt.IsZero() && !s.Sent.Before(r.DeadAt) {
			tr.WarmFailedAfterDetection++
			tr.WarmAfterDetection[s.Outcome]++
		}
		healed := !r.HealAt.IsZero() && !s.Sent.Before(r.HealAt)
		if healed {
			tr.FailedAfterHeal++
		}
		switch {
		case blip(ss, i):
			// A lone failure between two answered requests is counted,
			// but is no outage: it does not hold back "served again"
			// (tenement's own sporadic 502s are such).
			tf.Blips++
		case healed:
			lastFailHealed = s.Sent
		case s.Sent.Before(windowEnd):
			lastFail = s.Sent
		}
	}
	if !lastFail.IsZero() {
		tf.Interrupted = true
		tf.ServedAgain = servedAfter(ss, lastFail, windowEnd, t0)
	}
	tf.LongestGap = Millis(longestGap(ss, r.LoadStart, r.LoadEnd))
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	tf.P50, tf.P99 = Millis(percentile(lats, 0.5)), Millis(percentile(lats, 0.99))
	if len(lats) > 0 {
		tf.Max = Millis(lats[len(lats)-1])
	}
	return tf, lastFail, lastFailHealed
}

// servedAfter is when the tenant was first answered by a request sent
// after from (and before end), timed from t0; nil when none was. Answers
// come out of order: a request held by a hung server may be answered long
// after later ones that went elsewhere, so the earliest answer counts.
func servedAfter(ss []Sample, from, end, t0 time.Time) *Millis {
	var first time.Time
	for _, s := range ss {
		if s.OK() && s.Sent.After(from) && s.Sent.Before(end) && (first.IsZero() || s.Done().Before(first)) {
			first = s.Done()
		}
	}
	return since(t0, first)
}

// blip reports whether ss[i], a failure, is alone: the requests sent just
// before and just after it were answered.
func blip(ss []Sample, i int) bool {
	return i > 0 && i+1 < len(ss) && ss[i-1].OK() && ss[i+1].OK()
}

// longestGap is the longest time between two successful answers (or from
// the start of the load to the first, or from the last to its end).
func longestGap(ss []Sample, start, end time.Time) time.Duration {
	var done []time.Time
	for _, s := range ss {
		if s.OK() {
			done = append(done, s.Done())
		}
	}
	sort.Slice(done, func(i, j int) bool { return done[i].Before(done[j]) })
	if len(done) == 0 {
		return end.Sub(start)
	}
	gap := done[0].Sub(start)
	for i := 1; i < len(done); i++ {
		gap = max(gap, done[i].Sub(done[i-1]))
	}
	return max(gap, end.Sub(done[len(done)-1]))
}

// measureDuplicates finds instances listed by two servers in one round.
func measureDuplicates(r Record, tr *Trial) {
	t0 := r.FaultAt
	type seen struct {
		first, last time.Time
		servers     map[string]bool
	}
	dups := map[string]*seen{}
	after := map[string]bool{}
	for _, round := range r.Rounds {
		where := map[string][]string{}
		for server, names := range round.Lists {
			for _, n := range names {
				where[n] = append(where[n], server)
			}
		}
		for n, servers := range where {
			if len(servers) < 2 {
				continue
			}
			d := dups[n]
			if d == nil {
				d = &seen{first: round.At, servers: map[string]bool{}}
				dups[n] = d
			}
			d.last = round.At
			for _, s := range servers {
				d.servers[s] = true
			}
			if !r.BackAt.IsZero() && round.At.After(r.BackAt.Add(r.ReturnGrace)) {
				after[n] = true
			}
		}
	}
	tr.OnTwoServers = []Duplicate{}
	for n, d := range dups {
		servers := make([]string, 0, len(d.servers))
		for s := range d.servers {
			servers = append(servers, s)
		}
		sort.Strings(servers)
		tr.OnTwoServers = append(tr.OnTwoServers, Duplicate{Name: n, Servers: servers, First: Millis(d.first.Sub(t0)),
			Last: Millis(d.last.Sub(t0)), For: Millis(d.last.Sub(d.first))})
	}
	sort.Slice(tr.OnTwoServers, func(i, j int) bool { return tr.OnTwoServers[i].Name < tr.OnTwoServers[j].Name })
	tr.OnTwoServersAfterReturn = len(after)
}

// percentile is the nearest-rank percentile of sorted values: the
// smallest value at least a share q of them do not exceed.
func percentile[T int | float64 | time.Duration](sorted []T, q float64) T {
	var zero T
	if len(sorted) == 0 {
		return zero
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
