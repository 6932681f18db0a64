package hook

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/gs-auth-token/gs-auth-token/audit"
	"github.com/gs-auth-token/gs-auth-token/token"
)

// Hook declares a web hook: what it is for, the arguments it takes and the
// actions it performs.
type Hook struct {
	// Label describes what the hook does. It heads the hook's description.
	Label string
	// Fields are the hook's arguments, in the order they are described.
	Fields []Field
	// Actions are the operations a submission can request. A submission
	// names one action by sending its field, with any value.
	Actions []Action
}

// Action is one thing a hook does.
type Action struct {
	// Name is the action's field name, without the endpoint's prefix.
	Name string
	// Label describes the action in the hook's description.
	Label string
	// Success runs when the token and every field are valid. Its result is
	// sent as JSON with status 200. An error is logged and the client gets
	// a generic 500, so the error's text never reaches it.
	Success func(ctx context.Context, s *Submission) (any, error)
	// Failure runs when the token or a field is invalid. Nil means
	// [DefaultFailure]. A custom handler should call [LogAuthError], as
	// GroupServer's failure handlers call log_auth_error.
	Failure func(w http.ResponseWriter, r *http.Request, errs []error)
}

// Site is the site an endpoint belongs to.
type Site struct {
	// ID is the site's id. The empty string is the install-wide site.
	ID string
	// Name is the site's human-readable name, for logs.
	Name string
}

// Verifier checks a token for a site, as *store.Store does. It returns the
// matching entry, an error matching [token.ErrMismatch] for a wrong token,
// or any other error when the tokens cannot be read. The endpoint then
// responds 503, failing closed.
type Verifier interface {
	Verify(ctx context.Context, siteID, supplied string) (token.Entry, error)
}

// SiteOnlyVerifier is a Verifier that can refuse install-wide tokens
// itself, as *store.Store and *store.Cache can. An endpoint made with
// WithInstallWideTokens(false) calls VerifySiteOnly when its verifier has
// it, so that a refused token is not recorded as used; with a plain
// Verifier it refuses such tokens after Verify returns.
type SiteOnlyVerifier interface {
	Verifier
	VerifySiteOnly(ctx context.Context, siteID, supplied string) (token.Entry, error)
}

// Defaults for the endpoint options.
const (
	// DefaultMaxBodyBytes is the largest request body accepted: 10 MiB,
	// because hooks such as a mail gateway carry whole email messages.
	DefaultMaxBodyBytes = 10 << 20
	// DefaultMaxParts is the largest number of multipart parts accepted.
	DefaultMaxParts = 1000
)

// Option configures an [Endpoint].
type Option func(*Endpoint)

// WithSite sets the site the endpoint belongs to. The default is the
// install-wide site, with id "".
func WithSite(s Site) Option { return func(e *Endpoint) { e.site = s } }

// WithPrefix sets the prefix of every field name. The default, "", suits
// JSON hooks, whose actions arrive as the action's name. GroupServer's
// ordinary forms use "form.", with actions as "form.actions.NAME".
func WithPrefix(p string) Option { return WithPrefixes(p) }

// WithPrefixes accepts submissions with any of the given prefixes, so that
// one endpoint serves JSON clients ("") and GroupServer-style form clients
// ("form.") alike. The prefix of the submitted action selects the prefix
// of every other field of that request. The description uses the first.
func WithPrefixes(ps ...string) Option {
	if len(ps) == 0 {
		panic("hook: WithPrefixes needs at least one prefix")
	}
	return func(e *Endpoint) { e.prefixes = append([]string(nil), ps...) }
}

// WithMaxBodyBytes sets the largest accepted body. The default is
// [DefaultMaxBodyBytes].
func WithMaxBodyBytes(n int64) Option { return func(e *Endpoint) { e.maxBody = n } }

// WithMaxParts sets the largest number of multipart parts accepted. The
// default is [DefaultMaxParts].
func WithMaxParts(n int) Option { return func(e *Endpoint) { e.maxParts = n } }

// WithAudit makes token failures write audit events through w. By default
// no events are written, but failures are still logged.
func WithAudit(w audit.Writer) Option {
	return func(e *Endpoint) { e.auditWriter = w }
}

// WithThrottle counts failed authentications per client address in t and
// responds 429, without checking anything, to an address that is locked
// out. The default is no throttling; share one Throttle between the
// endpoints of a server.
func WithThrottle(t *Throttle) Option { return func(e *Endpoint) { e.throttle = t } }

// WithInstallWideTokens sets whether a site accepts install-wide tokens
// (those of site ""), GroupServer's plain-text token among them. The
// default is true; a site that opts out accepts only its own tokens.
func WithInstallWideTokens(accept bool) Option {
	return func(e *Endpoint) { e.rejectInstallWide = !accept }
}

// WithLogger sets the logger. The default is [slog.Default].
func WithLogger(l *slog.Logger) Option { return func(e *Endpoint) { e.logger = l } }

// WithClientAddr sets how the client's address is found for logs and the
// audit trail. The default takes the host of the connection's remote
// address and trusts no header.
func WithClientAddr(f func(*http.Request) string) Option {
	return func(e *Endpoint) { e.clientAddr = f }
}

// Endpoint serves one hook over HTTP with GroupServer's JSON endpoint
// behaviour. It is safe for concurrent use.
type Endpoint struct {
	hook        Hook
	verifier    Verifier
	site        Site
	prefixes    []string
	maxBody     int64
	maxParts    int
	auditWriter audit.Writer
	recorder    *audit.Recorder
	logger      *slog.Logger
	clientAddr  func(*http.Request) string
	throttle    *Throttle
	stats       *Stats

	rejectInstallWide bool

	fields      map[string]*Field // by name, without prefix
	tokenFields []tokenField
	// submitted holds, for each prefix in order, the submitted names of
	// the actions and fields, made once so that requests build no strings.
	submitted   []prefixNames
	description []byte
}

// New returns an endpoint that serves h and checks tokens with v. It panics
// if h is not a valid declaration (a field or action without a name, two
// with the same name, a Default of the wrong type, an action without a
// Success handler) or if h has an AuthToken field and v is nil.
func New(h Hook, v Verifier, opts ...Option) *Endpoint {
	e := &Endpoint{
		hook:       h,
		verifier:   v,
		maxBody:    DefaultMaxBodyBytes,
		maxParts:   DefaultMaxParts,
		logger:     slog.Default(),
		clientAddr: RemoteHost,
		prefixes:   []string{""},
		fields:     make(map[string]*Field),
	}
	for _, o := range opts {
		o(e)
	}
	if e.maxBody <= 0 || e.maxParts <= 0 {
		panic("hook: WithMaxBodyBytes and WithMaxParts need positive limits")
	}

	e.checkFields()
	if len(e.tokenFields) > 0 && v == nil {
		panic("hook: a hook with an AuthToken field needs a Verifier")
	}
	e.checkActions()
	e.nameSubmissions()

	if e.auditWriter != nil {
		e.recorder = audit.NewRecorder(e.auditWriter, e.logger)
	}
	e.description = e.describe()
	return e
}

// checkFields checks each field's declaration, panicking on a mistake, and
// indexes the fields by name.
func (e *Endpoint) checkFields() {
	for i := range e.hook.Fields {
		f := &e.hook.Fields[i]
		f.check()
		if _, dup := e.fields[f.Name]; dup {
			panic(fmt.Sprintf("hook: two fields named %q", f.Name))
		}
		e.fields[f.Name] = f
		if f.Kind == AuthToken {
			e.tokenFields = append(e.tokenFields, tokenField{Field: f, index: i})
		}
	}
}

// checkActions checks each action's declaration, panicking on a mistake.
func (e *Endpoint) checkActions() {
	if len(e.hook.Actions) == 0 {
		panic("hook: a hook needs at least one Action")
	}
	seen := make(map[string]bool)
	for i, a := range e.hook.Actions {
		if a.Name == "" || a.Success == nil {
			panic(fmt.Sprintf("hook: action %d needs a Name and a Success handler", i))
		}
		if seen[a.Name] {
			panic(fmt.Sprintf("hook: two actions named %q", a.Name))
		}
		seen[a.Name] = true
		if _, clash := e.fields[a.Name]; clash && slices.Contains(e.prefixes, "") {
			panic(fmt.Sprintf("hook: action %q has the same name as a field", a.Name))
		}
	}
}

// nameSubmissions makes the submitted names of every action and field
// under every prefix.
func (e *Endpoint) nameSubmissions() {
	for _, p := range e.prefixes {
		names := prefixNames{prefix: p}
		for _, a := range e.hook.Actions {
			names.actions = append(names.actions, e.actionField(p, a.Name))
		}
		for _, f := range e.hook.Fields {
			names.fields = append(names.fields, p+f.Name)
		}
		e.submitted = append(e.submitted, names)
	}
}

// tokenField is an AuthToken field and its index in Hook.Fields.
type tokenField struct {
	*Field
	index int
}

// prefixNames are the submitted names under one prefix, in declaration
// order: actions[i] is the field of Hook.Actions[i], fields[i] the name of
// Hook.Fields[i].
type prefixNames struct {
	prefix  string
	actions []string
	fields  []string
}

// actionField returns the submitted name of an action: the bare name when
// there is no prefix, as in JSON hooks, and PREFIX + "actions." + name
// otherwise, as in GroupServer's forms.
func (e *Endpoint) actionField(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "actions." + name
}

// Site returns the site the endpoint belongs to.
func (e *Endpoint) Site() Site { return e.site }

// RemoteHost returns the host part of r.RemoteAddr, the address of the
// connection's peer.
func RemoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return strings.TrimPrefix(strings.TrimSuffix(host, "]"), "[")
}
