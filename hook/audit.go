package hook

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gs-auth-token/gs-auth-token/audit"
	"github.com/gs-auth-token/gs-auth-token/token"
)

// auditTimeout bounds the audit write of one failure. The write does not
// stop when the client goes away, so that every failure is recorded.
const auditTimeout = 5 * time.Second

type infoKey struct{}

// requestInfo is what an endpoint puts in the context of a submission, for
// [LogAuthError] and handlers.
type requestInfo struct {
	endpoint   *Endpoint
	submission *Submission
	logged     atomic.Bool
}

// SubmissionFrom returns the submission being handled, from the context
// that an [Endpoint] passes to failure and success handlers.
func SubmissionFrom(ctx context.Context) (*Submission, bool) {
	info, ok := ctx.Value(infoKey{}).(*requestInfo)
	if !ok {
		return nil, false
	}
	return info.submission, true
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
	e.logger.WarnContext(ctx, "authentication token mismatch", attrs...)
	if e.recorder == nil {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	// Record logs its own failure with the event's fields.
	_ = e.recorder.Record(actx, audit.Event{
		Code:               audit.CodeMismatch,
		SiteID:             e.site.ID,
		InstanceDatum:      page,
		SupplementaryDatum: client,
	})
}
