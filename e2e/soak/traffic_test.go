package soak

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// rotation is one replacement of the rotated client's token.
type rotation struct {
	// started and ended bracket the run of the rotate command, so the old
	// token's grace period ends between started+grace and ended+grace.
	started, ended time.Time
}

// rotatedClient is the token of the client whose token is rotated, as
// its configuration would contain it.
type rotatedClient struct {
	mu       sync.Mutex
	current  string
	previous string
	// switchAt is when the late client stops sending previous.
	switchAt time.Time
	// replaced maps each old token to the rotation that replaced it.
	replaced map[string]rotation
}

func (r *rotatedClient) token() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.current
}

// lateToken returns the token of a client that updates its configuration
// lateSwitch after each rotation.
func (r *rotatedClient) lateToken(now time.Time) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.previous != "" && now.Before(r.switchAt) {
		return r.previous
	}
	return r.current
}

func (r *rotatedClient) rotate(tok string, rot rotation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replaced[r.current] = rot
	r.previous, r.current = r.current, tok
	r.switchAt = rot.ended.Add(lateSwitch)
}

// replacedBy returns the rotation that replaced tok, if any.
func (r *rotatedClient) replacedBy(tok string) (rotation, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rot, ok := r.replaced[tok]
	return rot, ok
}

// cut is one outage of the proxy. restored is zero while it lasts.
type cut struct {
	started, restored time.Time
}

// outages records the cuts of the proxy.
type outages struct {
	mu   sync.Mutex
	cuts []cut
}

func (o *outages) start(at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cuts = append(o.cuts, cut{started: at})
}

func (o *outages) end(at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cuts[len(o.cuts)-1].restored = at
}

// excuses503 reports whether a request sent at sent, whose response came
// at received, may get 503. It may when the response came after a cut
// began and the request was sent before staleness plus recoverySlack after
// the restore.
func (o *outages) excuses503(sent, received time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range o.cuts {
		if received.Before(c.started) {
			continue
		}
		if c.restored.IsZero() || !sent.After(c.restored.Add(staleness+recoverySlack)) {
			return true
		}
	}
	return false
}

// Kinds of violation.
const (
	badAccepted   = "wrong or revoked token accepted"
	valid503      = "valid token rejected with 503 outside the fail-closed window"
	valid401      = "valid token rejected with 401"
	oldAccepted   = "old token accepted after its grace period and the staleness bound"
	unexpected    = "unexpected status"
	requestFailed = "request failed"
)

var violationKinds = []string{badAccepted, valid503, valid401, oldAccepted, unexpected, requestFailed}

// tally counts the responses of the run.
type tally struct {
	mu sync.Mutex
	// responses counts responses by client kind and status, such as
	// "wrong 401".
	responses map[string]int
	// unauthorized counts 401 responses by the audit code each must have
	// caused; "?" is a 401 that should not have happened.
	unauthorized map[string]int
	violations   map[string]int
	// examples keeps the first few descriptions of each kind of violation.
	examples map[string][]string
}

func newTally() *tally {
	return &tally{responses: map[string]int{}, unauthorized: map[string]int{}, violations: map[string]int{}, examples: map[string][]string{}}
}

func (t *tally) violation(kind, detail string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.violations[kind]++
	if len(t.examples[kind]) < 5 {
		t.examples[kind] = append(t.examples[kind], detail)
	}
}

// response is the outcome of one request.
type response struct {
	kind           string
	token          string
	status         int
	err            error
	sent, received time.Time
}

// Client kinds.
const (
	kindRotated = "rotated"
	kindLate    = "late"
	kindSteady  = "steady"
	kindWrong   = "wrong"
	kindRevoked = "revoked"
)

// run is the state that the clients, the rotations and the outage share.
type run struct {
	base    string
	start   time.Time
	rotated *rotatedClient
	outages *outages
	tally   *tally
}

// judge counts a response and records any violation.
func (r *run) judge(a response) {
	at := a.sent.Sub(r.start).Round(time.Millisecond)
	if a.err != nil {
		r.tally.violation(requestFailed, fmt.Sprintf("%s client at %s: %v", a.kind, at, a.err))
		return
	}
	r.tally.mu.Lock()
	r.tally.responses[fmt.Sprintf("%s %d", a.kind, a.status)]++
	r.tally.mu.Unlock()

	good := a.kind == kindRotated || a.kind == kindLate || a.kind == kindSteady
	rot, old := r.rotated.replacedBy(a.token)
	switch {
	case a.status == http.StatusServiceUnavailable:
		if !r.outages.excuses503(a.sent, a.received) {
			kind := unexpected
			if good {
				kind = valid503
			}
			r.tally.violation(kind, fmt.Sprintf("%s client got 503 at %s", a.kind, at))
		}
	case a.status == http.StatusOK && !good:
		r.tally.violation(badAccepted, fmt.Sprintf("%s token accepted at %s", a.kind, at))
	case a.status == http.StatusOK && old && a.sent.After(rot.ended.Add(grace+staleness+time.Second)):
		r.tally.violation(oldAccepted, fmt.Sprintf("old token accepted at %s, rotation ended at %s", at, rot.ended.Sub(r.start).Round(time.Millisecond)))
	case a.status == http.StatusOK:
	case a.status == http.StatusUnauthorized:
		r.count401(a, at, good, old, rot)
	default:
		r.tally.violation(unexpected, fmt.Sprintf("%s client got %d at %s", a.kind, a.status, at))
	}
}

// count401 counts a 401 by the audit code it must have caused, and
// records a 401 for a valid token, except for an old token whose grace
// period may have ended.
func (r *run) count401(a response, at time.Duration, good, old bool, rot rotation) {
	code := "?"
	switch {
	case a.kind == kindWrong:
		code = "1"
	case a.kind == kindRevoked:
		code = "3"
	case old && !a.received.Before(rot.started.Add(grace)):
		code = "2"
	}
	r.tally.mu.Lock()
	r.tally.unauthorized[code]++
	r.tally.mu.Unlock()
	if good && code == "?" {
		r.tally.violation(valid401, fmt.Sprintf("%s client got 401 at %s", a.kind, at))
	}
}

// client sends requests until the deadline, taking each token from next.
func (r *run) client(kind string, deadline time.Time, next func() string) {
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}, Timeout: requestTimeout}
	defer hc.CloseIdleConnections()
	for time.Now().Before(deadline) {
		tok := next()
		a := response{kind: kind, token: tok, sent: time.Now()}
		a.status, a.err = post(hc, r.base, tok)
		a.received = time.Now()
		r.judge(a)
		time.Sleep(pause)
	}
}

// post sends tok to the example hook and returns the status.
func post(hc *http.Client, base, tok string) (int, error) {
	resp, err := hc.PostForm(base+"/some-hook.json", url.Values{"token": {tok}, "some": {""}})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}
