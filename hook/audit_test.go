package hook_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gs-auth-token/gs-auth-token/audit"
	"github.com/gs-auth-token/gs-auth-token/hook"
	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
	"github.com/gs-auth-token/gs-auth-token/store"
	"github.com/gs-auth-token/gs-auth-token/token"
)

func TestAuditRow(t *testing.T) {
	for _, backend := range testdb.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			st, _ := openStore(t, backend.New(t))
			site := hook.Site{ID: "site1", Name: "Site one"}
			ep := newEndpoint(someHook(), st, hook.WithAudit(st), hook.WithSite(site))
			req := request(http.MethodPost, pageTarget+"?lang=en", formType, "token=wrong&some")
			req.RemoteAddr = "192.0.2.7:4711"
			if rec := serve(ep, req); rec.Code != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401", rec.Code)
			}

			rows := auditRows(t, st)
			if len(rows) != 1 {
				t.Fatalf("got %d audit rows, want 1: %+v", len(rows), rows)
			}
			row := rows[0]
			tests := []struct {
				name string
				got  string
				want string
			}{
				{"subsystem", row.Subsystem, "gs.auth.token"},
				{"code", row.Code, "1"},
				{"site", row.SiteID, "site1"},
				{"page", row.InstanceDatum, pageTarget},
				{"client", row.SupplementaryDatum, "192.0.2.7"},
				{"user", row.UserID, ""},
				{"group", row.GroupID, ""},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					if tt.got != tt.want {
						t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
					}
				})
			}
			t.Run("id", func(t *testing.T) {
				if len(row.ID) != audit.IDLength {
					t.Errorf("id %q has %d characters, want %d", row.ID, len(row.ID), audit.IDLength)
				}
			})
			t.Run("date", func(t *testing.T) {
				if row.Date.IsZero() {
					t.Errorf("date is zero")
				}
			})
		})
	}
}

func TestAuditPageURL(t *testing.T) {
	tests := []struct {
		name   string
		host   string
		target string
		check  func(page string) bool
		want   string
	}{
		{"query removed", "127.0.0.1", pageTarget + "?lang=en&x=1", func(p string) bool { return p == pageTarget }, "the URL without its query"},
		{"long host bounded", strings.Repeat("h", 5000), pageTarget, func(p string) bool { return len(p) <= 2048 }, "at most 2048 bytes"},
		{"invalid utf-8 host", "bad\xff\xfehost", pageTarget, utf8.ValidString, "valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := sqliteStore(t)
			ep := newEndpoint(someHook(), st, hook.WithAudit(st))
			req := request(http.MethodPost, tt.target, formType, "token=wrong&some")
			req.Host = tt.host
			serve(ep, req)
			rows := auditRows(t, st)
			if len(rows) != 1 {
				t.Fatalf("got %d audit rows, want 1", len(rows))
			}
			if page := rows[0].InstanceDatum; !tt.check(page) {
				t.Errorf("page = %.80q, want %s", page, tt.want)
			}
		})
	}
}

func TestAuditRowCount(t *testing.T) {
	st, tok := sqliteStore(t)
	h := kindsHook()
	tests := []struct {
		name string
		body string
		want int
	}{
		{"wrong token", "token=wrong&some&name=Ann", 1},
		{"wrong token and bad fields", "token=wrong&some&count=abc", 1},
		{"malformed token", "token=" + url.QueryEscape("\u200b"+tok) + "&some&name=Ann", 1},
		{"missing token", "some&name=Ann", 0},
		{"empty token", "token=&some&name=Ann", 0},
		{"field errors", "token=" + tok + "&some&count=abc", 0},
		{"success", "token=" + tok + "&some&name=Ann", 0},
		{"description", "token=wrong", 0},
		{"token twice", "token=wrong&token=" + tok + "&some&name=Ann", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(auditRows(t, st))
			ep := newEndpoint(h, st, hook.WithAudit(st))
			postForm(ep, tt.body)
			if got := len(auditRows(t, st)) - before; got != tt.want {
				t.Errorf("wrote %d audit rows, want %d", got, tt.want)
			}
		})
	}
}

func TestAuditWithoutWriter(t *testing.T) {
	st, _ := sqliteStore(t)
	logger, logs := newLogger()
	ep := newEndpoint(someHook(), st, hook.WithLogger(logger))
	if rec := postForm(ep, "token=wrong&some"); rec.Code != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401", rec.Code)
	}
	if n := len(auditRows(t, st)); n != 0 {
		t.Errorf("wrote %d audit rows without WithAudit, want 0", n)
	}
	if n := logs.count(t, "WARN", "authentication token mismatch"); n != 1 {
		t.Errorf("logged %d mismatch warnings, want 1; log:\n%s", n, logs)
	}
}

func TestAuditClientAddr(t *testing.T) {
	tests := []struct {
		name       string
		remoteAddr string
		opts       []hook.Option
		want       string
	}{
		{"ipv4", "192.0.2.7:4711", nil, "192.0.2.7"},
		{"ipv6", "[2001:db8::1]:4711", nil, "2001:db8::1"},
		{"no port", "192.0.2.8", nil, "192.0.2.8"},
		{"custom", "192.0.2.7:4711", []hook.Option{hook.WithClientAddr(func(*http.Request) string { return "198.51.100.9" })}, "198.51.100.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := sqliteStore(t)
			ep := newEndpoint(someHook(), st, append([]hook.Option{hook.WithAudit(st)}, tt.opts...)...)
			req := request(http.MethodPost, pageTarget, formType, "token=wrong&some")
			req.RemoteAddr = tt.remoteAddr
			serve(ep, req)
			rows := auditRows(t, st)
			if len(rows) != 1 {
				t.Fatalf("got %d audit rows, want 1", len(rows))
			}
			if rows[0].SupplementaryDatum != tt.want {
				t.Errorf("client = %q, want %q", rows[0].SupplementaryDatum, tt.want)
			}
		})
	}
}

func TestAuditConcurrentMismatches(t *testing.T) {
	const requests = 1000
	writers := []struct {
		name string
		// open returns the audit writer and a function that writes what
		// it holds.
		open func(t *testing.T, st *store.Store, logger *slog.Logger) (audit.Writer, func())
	}{
		{"store", func(t *testing.T, st *store.Store, logger *slog.Logger) (audit.Writer, func()) {
			return st, func() {}
		}},
		{"batcher", func(t *testing.T, st *store.Store, logger *slog.Logger) (audit.Writer, func()) {
			b := audit.NewBatcher(st, audit.WithBatchLogger(logger))
			return b, func() {
				if err := b.Close(testContext(t)); err != nil {
					t.Errorf("closing the batcher failed: %v", err)
				}
			}
		}},
	}
	for _, backend := range testdb.Backends() {
		for _, w := range writers {
			t.Run(backend.Name+" "+w.name, func(t *testing.T) {
				st, _ := openStore(t, backend.New(t))
				logger, logs := newLogger()
				writer, flush := w.open(t, st, logger)
				ep := newEndpoint(someHook(), st, hook.WithAudit(writer), hook.WithLogger(logger))

				var unauthorized atomic.Int64
				var wg sync.WaitGroup
				start := make(chan struct{})
				for range requests {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						if rec := postForm(ep, "token=wrong&some"); rec.Code == http.StatusUnauthorized {
							unauthorized.Add(1)
						}
					}()
				}
				close(start)
				done := make(chan struct{})
				go func() { wg.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(2 * time.Minute):
					t.Fatalf("the requests did not finish within 2 minutes")
				}
				flush()

				if n := unauthorized.Load(); n != requests {
					t.Errorf("%d requests answered 401, want %d", n, requests)
				}
				rows := auditRows(t, st)
				if len(rows) != requests {
					t.Errorf("got %d audit rows, want %d", len(rows), requests)
				}
				ids := make(map[string]bool, len(rows))
				for _, row := range rows {
					ids[row.ID] = true
				}
				if len(ids) != len(rows) {
					t.Errorf("got %d distinct ids among %d rows", len(ids), len(rows))
				}
				if failed := logs.lines(t, "ERROR"); failed != "" {
					t.Errorf("audit writes failed:\n%s", failed)
				}
			})
		}
	}
}

// failingWriter fails every write and counts the attempts.
type failingWriter struct{ calls atomic.Int64 }

func (w *failingWriter) WriteAuditEvent(context.Context, audit.Event) error {
	w.calls.Add(1)
	return errors.New("disk full")
}

func TestAuditWriteFails(t *testing.T) {
	st, _ := sqliteStore(t)
	closed, _ := sqliteStore(t)
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		writer audit.Writer
	}{
		{"writer error", &failingWriter{}},
		{"closed store", closed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, logs := newLogger()
			ep := newEndpoint(someHook(), st, hook.WithAudit(tt.writer), hook.WithLogger(logger))
			rec := postForm(ep, "token=wrong&some")
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("status = %d, want 401", rec.Code)
			}
			if got := decodeErrors(t, rec).Message; len(got) != 1 || got[0] != hook.AuthFailedMessage {
				t.Errorf("messages = %q, want only the generic message", got)
			}
			if n := logs.count(t, "ERROR", "writing an audit event failed"); n != 1 {
				t.Errorf("logged %d failed audit writes at error level, want 1; log:\n%s", n, logs)
			}
		})
	}
}

func TestAuditWriteRetries(t *testing.T) {
	st, _ := sqliteStore(t)
	w := &failingWriter{}
	logger, _ := newLogger()
	postForm(newEndpoint(someHook(), st, hook.WithAudit(w), hook.WithLogger(logger)), "token=wrong&some")
	if n := w.calls.Load(); n != audit.DefaultAttempts {
		t.Errorf("tried %d writes, want %d", n, audit.DefaultAttempts)
	}
}

func TestLogAuthErrorOutsideEndpoint(t *testing.T) {
	mismatch := []error{&token.MismatchError{Reason: token.ReasonUnknown}}
	req := request(http.MethodPost, pageTarget, formType, "token=wrong&some")
	tests := []struct {
		name string
		ctx  context.Context
		req  *http.Request
	}{
		{"background context", context.Background(), req},
		{"request context", req.Context(), req},
		{"nil context", nil, req},
		{"nil request", context.Background(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("LogAuthError panicked: %v", p)
				}
			}()
			hook.LogAuthError(tt.ctx, tt.req, mismatch)
		})
	}
}

func TestLogAuthErrorInFailureHandler(t *testing.T) {
	mismatch := []error{&token.MismatchError{Reason: token.ReasonUnknown}}
	tests := []struct {
		name    string
		failure func(w http.ResponseWriter, r *http.Request, errs []error)
		want    int
	}{
		{"twice", func(w http.ResponseWriter, r *http.Request, errs []error) {
			hook.LogAuthError(r.Context(), r, errs)
			hook.LogAuthError(r.Context(), r, errs)
			hook.WriteErrors(w, r, errs)
		}, 1},
		{"then default", func(w http.ResponseWriter, r *http.Request, errs []error) {
			hook.LogAuthError(r.Context(), r, errs)
			hook.DefaultFailure(w, r, errs)
		}, 1},
		{"never", func(w http.ResponseWriter, r *http.Request, errs []error) {
			hook.WriteErrors(w, r, errs)
		}, 0},
		{"background context", func(w http.ResponseWriter, r *http.Request, errs []error) {
			hook.LogAuthError(context.Background(), r, errs)
			hook.WriteErrors(w, r, errs)
		}, 0},
		{"nil request", func(w http.ResponseWriter, r *http.Request, errs []error) {
			hook.LogAuthError(r.Context(), nil, errs)
			hook.WriteErrors(w, r, errs)
		}, 0},
		{"other errors", func(w http.ResponseWriter, r *http.Request, errs []error) {
			hook.LogAuthError(r.Context(), r, []error{errors.New("something else")})
			hook.WriteErrors(w, r, errs)
		}, 0},
		{"made-up mismatch", func(w http.ResponseWriter, r *http.Request, errs []error) {
			hook.LogAuthError(r.Context(), r, mismatch)
			hook.WriteErrors(w, r, errs)
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := sqliteStore(t)
			h := someHook()
			h.Actions[0].Failure = tt.failure
			rec := postForm(newEndpoint(h, st, hook.WithAudit(st)), "token=wrong&some")
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("status = %d, want 401", rec.Code)
			}
			if n := len(auditRows(t, st)); n != tt.want {
				t.Errorf("wrote %d audit rows, want %d", n, tt.want)
			}
		})
	}
}

func TestSubmissionFrom(t *testing.T) {
	st, _ := sqliteStore(t)
	var action string
	var found bool
	h := someHook()
	h.Actions[0].Failure = func(w http.ResponseWriter, r *http.Request, errs []error) {
		var sub *hook.Submission
		sub, found = hook.SubmissionFrom(r.Context())
		if found {
			action = sub.Action
		}
		hook.DefaultFailure(w, r, errs)
	}
	postForm(newEndpoint(h, st), "token=wrong&some")
	if !found {
		t.Fatalf("SubmissionFrom found no submission in the failure handler's context")
	}
	if action != "some" {
		t.Errorf("Action = %q, want some", action)
	}
	if _, ok := hook.SubmissionFrom(context.Background()); ok {
		t.Errorf("SubmissionFrom(context.Background()) reported a submission")
	}
}

func TestHandlerContextPrintsNoValues(t *testing.T) {
	st, tok := sqliteStore(t)
	const note = "note-canary-42"
	var printed []string
	h := hook.Hook{Label: "Note", Fields: []hook.Field{tokenField, {Name: "body", Kind: hook.Text}},
		Actions: []hook.Action{{Name: "some", Success: func(ctx context.Context, s *hook.Submission) (any, error) {
			printed = append(printed, fmt.Sprint(ctx), fmt.Sprintf("%+v", ctx), fmt.Sprintf("%#v", ctx))
			return nil, nil
		}}}}
	rec := postForm(newEndpoint(h, st), "token="+tok+"&some&body="+note)
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
	}
	if len(printed) == 0 {
		t.Fatal("the action did not run")
	}
	for _, p := range printed {
		if strings.Contains(p, note) {
			t.Errorf("printing the handler's context shows a submitted value: %s", p)
		}
	}
	if !strings.Contains(printed[0], "WithValue(hook submission)") {
		t.Errorf("the handler's context prints as %q, without naming the submission", printed[0])
	}
}

func TestAuditLogLine(t *testing.T) {
	st, _ := sqliteStore(t)
	logger, logs := newLogger()
	site := hook.Site{ID: "site1", Name: "Site one"}
	postForm(newEndpoint(someHook(), st, hook.WithAudit(st), hook.WithLogger(logger), hook.WithSite(site)), "token=wrong&some")
	var warning map[string]any
	for _, rec := range logs.records(t) {
		if rec["msg"] == "authentication token mismatch" {
			warning = rec
		}
	}
	if warning == nil {
		t.Fatalf("no mismatch warning in the log:\n%s", logs)
	}
	tests := []struct {
		key  string
		want string
	}{
		{"level", "WARN"},
		{"page", pageTarget},
		{"site_id", "site1"},
		{"site_name", "Site one"},
		{"reason", "unknown token"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if warning[tt.key] != tt.want {
				t.Errorf("%s = %v, want %q", tt.key, warning[tt.key], tt.want)
			}
		})
	}
}

func TestCanaryNeverRepeated(t *testing.T) {
	secret := canary(t)
	st, tok := sqliteStore(t)
	tests := []struct {
		name        string
		method      string
		target      string
		contentType string
		body        string
	}{
		{"wrong token", http.MethodPost, pageTarget, formType, "token=" + secret + "&some"},
		{"wrong form token", http.MethodPost, pageTarget, formType, "form.token=" + secret + "&form.actions.some"},
		{"multipart", http.MethodPost, pageTarget, "", ""},
		{"malformed token", http.MethodPost, pageTarget, formType, "token=" + url.QueryEscape(secret+"\u200b") + "&some"},
		{"token with line break", http.MethodPost, pageTarget, formType, "token=" + secret + "%0A&some"},
		{"token twice", http.MethodPost, pageTarget, formType, "token=" + tok + "&token=" + secret + "&some"},
		{"token in query", http.MethodPost, pageTarget + "?token=" + secret, formType, "token=" + secret + "&some"},
		{"token in query of get", http.MethodGet, pageTarget + "?token=" + secret, "", ""},
		{"wrong token and bad field", http.MethodPost, pageTarget, formType, "token=" + secret + "&some&count=" + secret},
		{"too large", http.MethodPost, pageTarget, formType, "token=" + secret + "&some&pad=" + strings.Repeat("a", 4096)},
		{"bad method", http.MethodPut, pageTarget, formType, "token=" + secret + "&some"},
		{"bad type", http.MethodPost, pageTarget, "text/plain", "token=" + secret + "&some"},
		{"bearer header", http.MethodPost, pageTarget, formType, "some"},
		{"bearer header and body differ", http.MethodPost, pageTarget, formType, "token=" + tok + "&some"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, logs := newLogger()
			h := kindsHook()
			h.Fields[1].Required = false
			ep := hook.AccessLog(logger)(newEndpoint(h, st, hook.WithAudit(st), hook.WithLogger(logger),
				hook.WithPrefixes("", "form."), hook.WithMaxBodyBytes(2048)))
			req := request(tt.method, tt.target, tt.contentType, tt.body)
			if tt.name == "multipart" {
				body, ct := multipartBody(t, [2]string{"form.token", secret}, [2]string{"form.actions.some", ""})
				req = request(tt.method, tt.target, ct, body)
			}
			if strings.HasPrefix(tt.name, "bearer header") {
				req.Header.Set("Authorization", "Bearer "+secret)
			}

			rec := serve(ep, req)
			if rec.Code < 400 || rec.Code >= 500 {
				t.Errorf("status = %d, want a 4xx rejection", rec.Code)
			}
			if strings.Contains(rec.Body.String(), secret) {
				t.Errorf("body %s contains the canary", rec.Body)
			}
			for name, values := range rec.Header() {
				if strings.Contains(strings.Join(values, " "), secret) {
					t.Errorf("header %s contains the canary", name)
				}
			}
			if strings.Contains(logs.String(), secret) {
				t.Errorf("log contains the canary:\n%s", logs)
			}
			for _, row := range auditRows(t, st) {
				if strings.Contains(row.InstanceDatum+row.SupplementaryDatum+row.SiteID, secret) {
					t.Errorf("audit row %+v contains the canary", row)
				}
			}
		})
	}
}

func TestNamedTokenSecretNeverRepeated(t *testing.T) {
	st, _ := sqliteStore(t)
	stored, _, err := st.CreateToken(testContext(t), "client", "", 0)
	if err != nil {
		t.Fatalf("CreateToken failed: %v", err)
	}
	unknown, _, err := token.New()
	if err != nil {
		t.Fatal(err)
	}
	secretStart := len(token.Prefix) + token.IDLength + 1
	altered := []byte(stored)
	if altered[secretStart] == 'a' {
		altered[secretStart] = 'b'
	} else {
		altered[secretStart] = 'a'
	}
	tests := []struct {
		name   string
		token  string
		header bool
	}{
		{"unknown", unknown, false},
		{"unknown in header", unknown, true},
		{"altered secret", string(altered), false},
		{"altered secret in header", string(altered), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, logs := newLogger()
			ep := newEndpoint(someHook(), st, hook.WithAudit(st), hook.WithLogger(logger))
			req := request(http.MethodPost, pageTarget, formType, "token="+tt.token+"&some")
			if tt.header {
				req = request(http.MethodPost, pageTarget, formType, "some")
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			rec := serve(ep, req)
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("status = %d, want 401", rec.Code)
			}
			secret := tt.token[secretStart:]
			if strings.Contains(rec.Body.String(), secret) {
				t.Errorf("body %s contains the token's secret", rec.Body)
			}
			if strings.Contains(logs.String(), secret) {
				t.Errorf("log contains the token's secret:\n%s", logs)
			}
			for _, row := range auditRows(t, st) {
				if strings.Contains(row.InstanceDatum+row.SupplementaryDatum, secret) {
					t.Errorf("audit row %+v contains the token's secret", row)
				}
			}
		})
	}
}

func TestAccessLog(t *testing.T) {
	st, tok := sqliteStore(t)
	secret := canary(t)
	logger, logs := newLogger()
	h := hook.AccessLog(logger)(newEndpoint(someHook(), st, hook.WithLogger(logger)))
	tests := []struct {
		name       string
		req        *http.Request
		wantStatus float64
	}{
		{"query rejected", request(http.MethodGet, pageTarget+"?token="+secret, "", ""), 400},
		{"query allowed", request(http.MethodPost, pageTarget+"?lang="+secret, formType, "token="+tok+"&some"), 200},
		{"wrong token", request(http.MethodPost, pageTarget, formType, "token="+secret+"&some"), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(logs.records(t))
			serve(h, tt.req)
			var line map[string]any
			for _, rec := range logs.records(t)[before:] {
				if rec["msg"] == "request" {
					line = rec
				}
			}
			if line == nil {
				t.Fatalf("no access log line; log:\n%s", logs)
			}
			if line["path"] != "/hook.json" {
				t.Errorf("path = %v, want /hook.json", line["path"])
			}
			if line["status"] != tt.wantStatus {
				t.Errorf("status = %v, want %v", line["status"], tt.wantStatus)
			}
			if line["method"] != tt.req.Method {
				t.Errorf("method = %v, want %s", line["method"], tt.req.Method)
			}
		})
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("log contains the canary:\n%s", logs)
	}
}

func TestAccessLogKeepsResponseController(t *testing.T) {
	logger, _ := newLogger()
	var flushErr error
	h := hook.AccessLog(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		flushErr = http.NewResponseController(w).Flush()
	}))
	h.ServeHTTP(httptest.NewRecorder(), request(http.MethodGet, pageTarget, "", ""))
	if flushErr != nil {
		t.Errorf("Flush through the access log failed: %v", flushErr)
	}
}
