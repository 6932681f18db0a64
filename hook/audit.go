package hook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gs-auth-token/gs-auth-token/audit"
	"github.com/gs-auth-token/gs-auth-token/token"
)

// auditTimeout bounds the audit write of one failure. The write does not
// stop when the client goes away, so that every failure is recorded. It is
// longer than SQLite's busy timeout, so that writers queued on SQLite's
// write lock during a burst are not cut off while they wait.
const auditTimeout = 30 * time.Second

type infoKey struct{}

// requestInfo is the endpoint's state of one submission. It is also the
// context passed to handlers, the request's own with the info added, so
// that one allocation serves the info, the submission and the context.
type requestInfo struct {
	context.Context
	endpoint *Endpoint
	logged   atomic.Bool
	sub      Submission
}

// String describes the context without the submission, whose values must
// not reach a log line that prints a context. GoString does the same for
// the %#v verb.
func (i *requestInfo) String() string {
	return fmt.Sprint(i.Context) + ".WithValue(hook submission)"
}

func (i *requestInfo) GoString() string { return i.String() }

// Value returns the info itself for infoKey and the request context's
// values otherwise.
func (i *requestInfo) Value(key any) any {
	if _, ok := key.(infoKey); ok {
		return i
	}
	return i.Context.Value(key)
}

// SubmissionFrom returns the submission being handled, from the context
// that an [Endpoint] passes to failure and success handlers.
func SubmissionFrom(ctx context.Context) (*Submission, bool) {
	info, ok := ctx.Value(infoKey{}).(*requestInfo)
	if !ok {
		return nil, false
	}
	return &info.sub, true
}

// LogAuthError records a token failure, the counterpart of GroupServer's
// log_auth_error. When errs holds a token mismatch it writes one audit event
// (subsystem gs.auth.token, code 1, the site's id, the page URL without its
// query string, and the client address) and logs one warning naming the
// page and the site. A missing token is only logged, at debug level, as
// GroupServer did not audit it. Other errors are ignored.
//
// ctx must come from the request an [Endpoint] passed to the failure
// handler; with any other context, or a nil request, LogAuthError does
// nothing. It records at most once per request, however often it is called.
// A failed audit write is logged as an error and does not change the answer.
func LogAuthError(ctx context.Context, r *http.Request, errs []error) {
	if ctx == nil || r == nil {
		return
	}
	info, ok := ctx.Value(infoKey{}).(*requestInfo)
	if !ok {
		return
	}
	var mismatch *token.MismatchError
	found := false
	for _, err := range errs {
		if errors.As(err, &mismatch) {
			found = true
			break
		}
	}
	if !found || info.logged.Swap(true) {
		return
	}

	e := info.endpoint
	page := pageURL(r)
	client := e.clientAddr(r)
	attrs := []any{
		slog.String("page", page),
		slog.String("site_id", e.site.ID),
		slog.String("site_name", e.site.Name),
		slog.String("client", client),
		slog.String("reason", mismatch.Reason.String()),
	}
	if mismatch.Reason == token.ReasonMissing {
		e.logger.DebugContext(ctx, "request without a token", attrs...)
		return
	}
	if mismatch.TokenID != "" {
		attrs = append(attrs, slog.String("token_id", mismatch.TokenID), slog.String("token_name", mismatch.TokenName))
	}
	e.logger.WarnContext(ctx, "authentication token mismatch", attrs...)
	e.record(ctx, mismatchEvent(mismatch, e.site.ID, page, client))
}

// mismatchEvent returns the audit event of a rejected token. An unknown or
// malformed token keeps GroupServer's code 1 with the client address as
// its detail. A known token that is expired, revoked or of another site
// gets its own code and a detail that names it, so that an administrator
// can find the client that still uses it.
func mismatchEvent(m *token.MismatchError, siteID, page, client string) audit.Event {
	ev := audit.Event{Code: audit.CodeMismatch, SiteID: siteID, InstanceDatum: page, SupplementaryDatum: client}
	var what string
	switch m.Reason {
	case token.ReasonExpired:
		ev.Code, what = audit.CodeExpired, "expired"
	case token.ReasonRevoked:
		ev.Code, what = audit.CodeRevoked, "revoked"
	case token.ReasonWrongSite:
		ev.Code, what = audit.CodeWrongSite, "other site's"
	default:
		return ev
	}
	ev.SupplementaryDatum = fmt.Sprintf("%s token %q (id %s) presented by %s", what, m.TokenName, m.TokenID, client)
	return ev
}

// record writes an audit event when the endpoint has an audit writer. The
// write does not stop when the client goes away, so that every failure is
// recorded; the recorder logs a write that fails.
func (e *Endpoint) record(ctx context.Context, ev audit.Event) {
	if e.recorder == nil {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	_ = e.recorder.Record(actx, ev)
}
