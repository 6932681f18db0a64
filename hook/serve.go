package hook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gs-auth-token/gs-auth-token/audit"
	"github.com/gs-auth-token/gs-auth-token/token"
)

// Submission is a validated submission, passed to an action's Success
// handler. It holds every declared field except the token, whose value
// handlers never see.
type Submission struct {
	// Action is the name of the submitted action.
	Action string
	// Site is the endpoint's site.
	Site Site
	// TokenID names the token that authenticated the request, or is empty
	// for a hook without a token field.
	TokenID string

	values map[string]any
}

// set stores a field's value, making the map on first use, so that a hook
// with no field but the token allocates none.
func (s *Submission) set(name string, v any) {
	if s.values == nil {
		s.values = make(map[string]any)
	}
	s.values[name] = v
}

// Value returns the value of the named field: a string, int or bool by its
// kind, or nil for an undeclared name.
func (s *Submission) Value(name string) any { return s.values[name] }

// String returns the value of a text or Choice field, or "".
func (s *Submission) String(name string) string {
	v, _ := s.values[name].(string)
	return v
}

// Int returns the value of an Int field, or 0.
func (s *Submission) Int(name string) int {
	v, _ := s.values[name].(int)
	return v
}

// Bool returns the value of a Bool field, or false.
func (s *Submission) Bool(name string) bool {
	v, _ := s.values[name].(bool)
	return v
}

// ServeHTTP handles a request. GET and HEAD, and a POST that names no
// action, get the hook's description. A POST that names an action is
// checked in this order: the token, then every other field; the action's
// Success handler runs only when all are valid.
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer e.recoverPanic(w, r)

	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		e.rejectRequest(w, r, reject(http.StatusMethodNotAllowed,
			"Method "+r.Method+" is not allowed: POST a submission, or GET the description."))
		return
	}
	if e.tokenInQuery(r) {
		e.logger.WarnContext(r.Context(), "token in the URL query rejected",
			slog.String("page", pageURL(r)), slog.String("client", e.clientAddr(r)), slog.String("site_id", e.site.ID))
		writeMessages(w, http.StatusBadRequest,
			"Send the token in the request body, never in the URL: URLs are written to logs. The token was not checked; replace it, because it may have been recorded.")
		return
	}
	if r.Method != http.MethodPost {
		e.writeDescription(w)
		return
	}
	if e.throttle != nil {
		if wait, blocked := e.throttle.Blocked(e.clientAddr(r)); blocked {
			e.rejectThrottled(w, r, wait)
			return
		}
	}

	f, rerr := e.parseBody(w, r)
	if rerr != nil {
		e.rejectRequest(w, r, rerr)
		return
	}
	action, names, rerr := e.findAction(f)
	if rerr != nil {
		e.rejectRequest(w, r, rerr)
		return
	}
	if action == nil {
		e.writeDescription(w)
		return
	}
	raw, rerr := e.collect(f, names)
	if rerr != nil {
		e.rejectRequest(w, r, rerr)
		return
	}

	info := &requestInfo{Context: r.Context(), endpoint: e}
	info.sub = Submission{Action: action.Name, Site: e.site}
	sub := &info.sub
	var ctx context.Context = info
	failure := func(errs []error) {
		handler := action.Failure
		if handler == nil {
			handler = DefaultFailure
		}
		// Only failures need the request to carry the context, so the
		// copy of the request is made here and not on every success.
		handler(w, r.WithContext(ctx), errs)
	}

	entry, err := e.checkToken(r, raw)
	if err != nil {
		var rerr *requestError
		if errors.As(err, &rerr) {
			e.rejectRequest(w, r, rerr)
			return
		}
		e.stats.add(outcomeOf(err))
		if !IsAuthError([]error{err}) {
			e.logger.ErrorContext(r.Context(), "checking a token failed, so the request was refused",
				slog.String("page", pageURL(r)), slog.String("site_id", e.site.ID), slog.String("error", err.Error()))
			w.Header().Set("Retry-After", "5")
			writeMessages(w, http.StatusServiceUnavailable, "The token could not be checked because the token store is unavailable. Try again later.")
			return
		}
		e.countFailure(r)
		failure([]error{err})
		return
	}
	sub.TokenID = entry.ID

	if errs := e.validate(raw, sub); len(errs) > 0 {
		e.stats.add(OutcomeInvalid)
		failure(errs)
		return
	}
	e.stats.add(OutcomeOK)
	e.succeed(ctx, w, r, action, sub)
}

func (e *Endpoint) succeed(ctx context.Context, w http.ResponseWriter, r *http.Request, action *Action, sub *Submission) {
	result, err := action.Success(ctx, sub)
	if err != nil {
		e.logger.ErrorContext(r.Context(), "hook action failed",
			slog.String("action", action.Name), slog.String("page", pageURL(r)),
			slog.String("site_id", e.site.ID), slog.String("error", err.Error()))
		writeMessages(w, http.StatusInternalServerError, "The action failed. The error has been logged.")
		return
	}
	if result == nil {
		result = map[string]any{"status": 0}
	}
	writeJSON(w, http.StatusOK, result)
}

func (e *Endpoint) recoverPanic(w http.ResponseWriter, r *http.Request) {
	p := recover()
	if p == nil {
		return
	}
	if p == http.ErrAbortHandler {
		panic(p)
	}
	e.logger.ErrorContext(r.Context(), "hook handler panicked",
		slog.String("page", pageURL(r)), slog.String("panic", fmt.Sprint(p)))
	writeMessages(w, http.StatusInternalServerError, "The action failed. The error has been logged.")
}

// tokenInQuery reports whether the URL query names a token field, bare or
// with any of the endpoint's prefixes. It splits the query itself, on "&"
// and ";", because url.ParseQuery skips pairs it cannot parse and a token
// could hide in one.
func (e *Endpoint) tokenInQuery(r *http.Request) bool {
	if r.URL.RawQuery == "" || len(e.tokenFields) == 0 {
		return false
	}
	for _, pair := range strings.FieldsFunc(r.URL.RawQuery, func(c rune) bool { return c == '&' || c == ';' }) {
		key, _, _ := strings.Cut(pair, "=")
		if k, err := url.QueryUnescape(key); err == nil {
			key = k
		}
		if e.isTokenName(key) {
			return true
		}
	}
	return false
}

func (e *Endpoint) isTokenName(key string) bool {
	for _, f := range e.tokenFields {
		if key == f.Name {
			return true
		}
		for _, p := range e.prefixes {
			if key == p+f.Name {
				return true
			}
		}
	}
	return false
}

// findAction returns the one action the form names and the names of its
// prefix, nil when it names none, or a rejection when it names several.
func (e *Endpoint) findAction(f form) (*Action, *prefixNames, *requestError) {
	var found *Action
	var names *prefixNames
	for p := range e.submitted {
		for i, field := range e.submitted[p].actions {
			if _, ok := f[field]; !ok {
				continue
			}
			if found != nil {
				return nil, nil, reject(http.StatusBadRequest, "The submission names more than one action: send exactly one.")
			}
			found, names = &e.hook.Actions[i], &e.submitted[p]
		}
	}
	return found, names, nil
}

// collect returns the single value of each declared field present in f
// under the action's prefix, by field name. A field sent several times with
// different values, or with text that is not valid UTF-8, is rejected
// without quoting the value.
func (e *Endpoint) collect(f form, names *prefixNames) (submitted, *requestError) {
	out := make(submitted, len(e.hook.Fields))
	for i, name := range names.fields {
		field := &e.hook.Fields[i]
		vs, ok := f[name]
		if !ok {
			continue
		}
		for _, v := range vs[1:] {
			if v != vs[0] {
				return nil, reject(http.StatusBadRequest, field.title()+": given more than once with different values; send it once.")
			}
		}
		if !utf8.ValidString(vs[0]) {
			return nil, reject(http.StatusBadRequest, field.title()+": is not valid UTF-8 text.")
		}
		out[i] = rawValue{value: vs[0], present: true}
	}
	return out, nil
}

// rawValue is the single submitted value of a declared field.
type rawValue struct {
	value   string
	present bool
}

// submitted holds the values of a submission, indexed like Hook.Fields.
type submitted []rawValue

// checkToken checks the token of every token field, taken from the body or
// from an "Authorization: Bearer" header. A hook without a token field
// accepts every request. A header and a body that carry different tokens
// are rejected with a *requestError; a malformed header fails as a
// mismatch.
func (e *Endpoint) checkToken(r *http.Request, raw submitted) (token.Entry, error) {
	if len(e.tokenFields) == 0 {
		return token.Entry{}, nil
	}
	header, present, ok := bearerToken(r)
	if !ok {
		return token.Entry{}, &token.MismatchError{Reason: token.ReasonMalformed}
	}

	var entry token.Entry
	for _, f := range e.tokenFields {
		supplied := raw[f.index].value
		if present {
			if supplied != "" && supplied != header {
				return token.Entry{}, reject(http.StatusBadRequest,
					f.title()+": the Authorization header and the body carry different tokens; send one.")
			}
			supplied = header
		}
		if supplied == "" {
			return token.Entry{}, &token.MismatchError{Reason: token.ReasonMissing}
		}
		got, err := e.verify(r.Context(), supplied)
		if err != nil {
			return token.Entry{}, err
		}
		if got.SiteID == "" && e.site.ID != "" && e.rejectInstallWide {
			return token.Entry{}, &token.MismatchError{Reason: token.ReasonWrongSite, TokenID: got.ID, TokenName: got.Name}
		}
		entry = got
	}
	return entry, nil
}

// verify checks one token, refusing install-wide tokens in the verifier
// when the site opts out and the verifier can.
func (e *Endpoint) verify(ctx context.Context, supplied string) (token.Entry, error) {
	if sv, ok := e.verifier.(SiteOnlyVerifier); ok && e.rejectInstallWide {
		return sv.VerifySiteOnly(ctx, e.site.ID, supplied)
	}
	return e.verifier.Verify(ctx, e.site.ID, supplied)
}

// countFailure counts a failed authentication against the client and,
// when it starts a lockout, logs and audits the lockout once.
func (e *Endpoint) countFailure(r *http.Request) {
	if e.throttle == nil {
		return
	}
	client := e.clientAddr(r)
	if !e.throttle.Failure(client) {
		return
	}
	page := pageURL(r)
	e.logger.WarnContext(r.Context(), "client locked out after too many failed authentications",
		slog.String("client", client), slog.String("page", page), slog.String("site_id", e.site.ID))
	e.record(r.Context(), audit.Event{
		Code:               audit.CodeThrottled,
		SiteID:             e.site.ID,
		InstanceDatum:      page,
		SupplementaryDatum: client + " locked out after too many failed authentications",
	})
}

// rejectThrottled responds to a locked-out client with 429 and Retry-After,
// without reading its body or checking its token.
func (e *Endpoint) rejectThrottled(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	e.stats.add(OutcomeThrottled)
	wait = e.throttle.hold(r.Context(), e.clientAddr(r), wait)
	seconds := int(math.Ceil(wait.Seconds()))
	if seconds < 1 {
		seconds = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(seconds))
	if e.logger.Enabled(r.Context(), slog.LevelDebug) {
		e.logger.DebugContext(r.Context(), "request from a locked-out client refused",
			slog.String("client", e.clientAddr(r)), slog.String("page", pageURL(r)))
	}
	writeMessages(w, http.StatusTooManyRequests,
		fmt.Sprintf("Too many failed authentications from this address. Try again in %d seconds.", seconds))
}

// validate parses every field but the token into sub and returns the
// problems, one error each.
func (e *Endpoint) validate(raw submitted, sub *Submission) []error {
	var errs []error
	for i := range e.hook.Fields {
		f := &e.hook.Fields[i]
		if f.Kind == AuthToken {
			continue
		}
		v, present := raw[i].value, raw[i].present
		absent := !present || (v == "" && f.Kind != Text && f.Kind != TextLine && f.Kind != ASCIILine)
		if absent || (v == "" && f.Required) {
			if f.Required {
				errs = append(errs, f.problem(ErrRequired, "Required input is missing."))
				continue
			}
			sub.set(f.Name, f.defaultValue())
			continue
		}
		parsed, err := f.parse(v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sub.set(f.Name, parsed)
	}
	return errs
}

// rejectRequest logs a rejected request and writes its error response.
func (e *Endpoint) rejectRequest(w http.ResponseWriter, r *http.Request, rerr *requestError) {
	e.stats.add(OutcomeRejected)
	e.logger.InfoContext(r.Context(), "request rejected",
		slog.Int("status", rerr.status), slog.String("reason", rerr.message),
		slog.String("page", pageURL(r)), slog.String("client", e.clientAddr(r)), slog.String("site_id", e.site.ID))
	writeMessages(w, rerr.status, rerr.message)
}

// maxPageURL bounds the page URL kept in logs and audit rows, because the
// Host header is chosen by the client.
const maxPageURL = 2048

// pageURL returns the URL of the requested page without its query string or
// fragment, which may hold secrets.
func pageURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u := scheme + "://" + r.Host + r.URL.EscapedPath()
	if len(u) > maxPageURL {
		u = u[:maxPageURL]
	}
	return strings.ToValidUTF8(u, "\uFFFD")
}
