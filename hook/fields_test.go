package hook_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/hook"
)

func TestFieldValues(t *testing.T) {
	st, tok := sqliteStore(t)
	ep := newEndpoint(kindsHook(), st)
	defaults := map[string]any{"token": nil, "name": "Ann", "body": "", "code": "abc", "count": 7.0, "flag": true, "colour": "green"}
	with := func(key string, v any) map[string]any {
		out := map[string]any{}
		for k, d := range defaults {
			out[k] = d
		}
		out[key] = v
		return out
	}
	tests := []struct {
		name   string
		fields url.Values
		want   map[string]any
	}{
		{"defaults", url.Values{}, defaults},
		{"text line", url.Values{"name": {"Zoë"}}, with("name", "Zoë")},
		{"text line at max length", url.Values{"name": {"0123456789"}}, with("name", "0123456789")},
		{"text keeps lines", url.Values{"body": {"one\r\ntwo\n"}}, with("body", "one\r\ntwo\n")},
		{"ascii line", url.Values{"code": {"x-1"}}, with("code", "x-1")},
		{"empty ascii line", url.Values{"code": {""}}, with("code", "")},
		{"int", url.Values{"count": {"42"}}, with("count", 42.0)},
		{"negative int", url.Values{"count": {"-3"}}, with("count", -3.0)},
		{"empty int", url.Values{"count": {""}}, defaults},
		{"bool yes", url.Values{"flag": {"yes"}}, with("flag", true)},
		{"bool upper off", url.Values{"flag": {"OFF"}}, with("flag", false)},
		{"bool zero", url.Values{"flag": {"0"}}, with("flag", false)},
		{"bool false", url.Values{"flag": {"false"}}, with("flag", false)},
		{"choice", url.Values{"colour": {"red"}}, with("colour", "red")},
		{"undeclared ignored", url.Values{"other": {"1"}}, defaults},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"token": {tok}, "some": {""}}
			if _, ok := tt.fields["name"]; !ok {
				form.Set("name", "Ann")
			}
			for k, v := range tt.fields {
				form[k] = v
			}
			rec := postForm(ep, form.Encode())
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
			}
			got := decodeMap(t, rec)["values"]
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("values = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFieldErrors(t *testing.T) {
	st, tok := sqliteStore(t)
	ep := newEndpoint(kindsHook(), st)
	tests := []struct {
		name   string
		fields string
		want   []string
	}{
		{"required absent", "", []string{"Name: Required input is missing."}},
		{"required empty", "&name=", []string{"Name: Required input is missing."}},
		{"text line break", "&name=a%0Ab", []string{"Name: must be a single line"}},
		{"text line carriage return", "&name=a%0Db", []string{"Name: must be a single line"}},
		{"over max length", "&name=01234567890", []string{"Name: is 11 bytes long, more than the maximum of 10"}},
		{"max length in bytes", "&name=%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9", []string{"Name: is 12 bytes long, more than the maximum of 10"}},
		{"ascii line non-ascii", "&name=Ann&code=%C3%A9", []string{"Code: must contain only ASCII characters"}},
		{"ascii line break", "&name=Ann&code=a%0Ab", []string{"Code: must be a single line"}},
		{"int letters", "&name=Ann&count=abc", []string{"Count: must be a whole number, such as 42"}},
		{"int fraction", "&name=Ann&count=1.5", []string{"Count: must be a whole number, such as 42"}},
		{"bool unknown", "&name=Ann&flag=maybe", []string{"Flag: must be true or false (also accepted: 1 or 0, on or off, yes or no)"}},
		{"choice unknown", "&name=Ann&colour=blue", []string{`Colour: must be one of "red", "green"`}},
		{"choice wrong case", "&name=Ann&colour=Red", []string{`Colour: must be one of "red", "green"`}},
		{"several in order", "&count=abc&colour=blue&flag=maybe", []string{
			"Name: Required input is missing.",
			"Count: must be a whole number, such as 42",
			"Flag: must be true or false (also accepted: 1 or 0, on or off, yes or no)",
			`Colour: must be one of "red", "green"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := postForm(ep, "token="+tok+"&some"+tt.fields)
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400; body %s", rec.Code, rec.Body)
			}
			got := decodeErrors(t, rec)
			if got.Status != hook.StatusValidationError {
				t.Errorf("status field = %d, want %d", got.Status, hook.StatusValidationError)
			}
			if !slices.Equal(got.Message, tt.want) {
				t.Errorf("messages = %q, want %q", got.Message, tt.want)
			}
		})
	}
}

func TestFieldErrorsNotQuoted(t *testing.T) {
	st, tok := sqliteStore(t)
	ep := newEndpoint(kindsHook(), st)
	secret := canary(t)
	tests := []struct {
		name   string
		fields string
	}{
		{"int", "&name=Ann&count=" + secret},
		{"bool", "&name=Ann&flag=" + secret},
		{"choice", "&name=Ann&colour=" + secret},
		{"max length", "&name=" + secret},
		{"ascii", "&name=Ann&code=%C3%A9" + secret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := postForm(ep, "token="+tok+"&some"+tt.fields)
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400; body %s", rec.Code, rec.Body)
			}
			if strings.Contains(rec.Body.String(), secret) {
				t.Errorf("body %s quotes the submitted value", rec.Body)
			}
		})
	}
}

func TestFieldErrorMatches(t *testing.T) {
	st, tok := sqliteStore(t)
	var got []error
	h := kindsHook()
	h.Actions[0].Failure = func(w http.ResponseWriter, r *http.Request, errs []error) {
		got = errs
		hook.WriteErrors(w, r, errs)
	}
	postForm(newEndpoint(h, st), "token="+tok+"&some&count=abc")
	if len(got) != 2 {
		t.Fatalf("errors = %v, want 2", got)
	}
	tests := []struct {
		name      string
		err       error
		wantField string
		wantIs    error
	}{
		{"required", got[0], "name", hook.ErrRequired},
		{"invalid", got[1], "count", hook.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fe *hook.FieldError
			if !errors.As(tt.err, &fe) {
				t.Fatalf("error %v is not a *hook.FieldError", tt.err)
			}
			if fe.Field != tt.wantField {
				t.Errorf("Field = %q, want %q", fe.Field, tt.wantField)
			}
			if !errors.Is(tt.err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", tt.err, tt.wantIs)
			}
			if hook.IsAuthError([]error{tt.err}) {
				t.Errorf("IsAuthError(%v) = true, want false", tt.err)
			}
		})
	}
}

func TestFieldTitleDefaultsToName(t *testing.T) {
	h := hook.Hook{
		Fields:  []hook.Field{{Name: "count", Kind: hook.Int}},
		Actions: []hook.Action{echoAction("some", "count")},
	}
	rec := postForm(newEndpoint(h, nil), "some&count=x")
	if got, want := decodeErrors(t, rec).Message, []string{"count: must be a whole number, such as 42"}; !slices.Equal(got, want) {
		t.Errorf("messages = %q, want %q", got, want)
	}
}

func TestHookWithoutToken(t *testing.T) {
	h := hook.Hook{
		Fields:  []hook.Field{{Name: "name", Kind: hook.TextLine, Title: "Name"}},
		Actions: []hook.Action{echoAction("some", "name")},
	}
	rec := postForm(newEndpoint(h, nil), "some&name=Ann")
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
	}
	d := decodeMap(t, rec)
	if d["token_id"] != "" {
		t.Errorf("token_id = %v, want empty for a hook without a token field", d["token_id"])
	}
}

func TestSubmissionAccessors(t *testing.T) {
	st, tok := sqliteStore(t)
	var sub *hook.Submission
	h := kindsHook()
	h.Actions[0].Success = func(ctx context.Context, s *hook.Submission) (any, error) {
		sub = s
		return nil, nil
	}
	rec := postForm(newEndpoint(h, st, hook.WithSite(hook.Site{ID: "site1", Name: "Site one"})), "token="+tok+"&some&name=Ann&count=5&flag=on")
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
	}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"string", sub.String("name"), "Ann"},
		{"string of int", sub.String("count"), ""},
		{"int", sub.Int("count"), 5},
		{"int of string", sub.Int("name"), 0},
		{"bool", sub.Bool("flag"), true},
		{"bool of string", sub.Bool("name"), false},
		{"undeclared", sub.Value("other"), nil},
		{"token hidden", sub.Value("token"), nil},
		{"action", sub.Action, "some"},
		{"site", sub.Site, hook.Site{ID: "site1", Name: "Site one"}},
		{"token id", sub.TokenID, "legacy"},
		{"nil result", decodeMap(t, rec)["status"], 0.0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}
}

func TestActionFailures(t *testing.T) {
	st, tok := sqliteStore(t)
	secret := canary(t)
	tests := []struct {
		name       string
		success    func(context.Context, *hook.Submission) (any, error)
		wantLogged bool
	}{
		{"error", func(context.Context, *hook.Submission) (any, error) { return nil, errors.New(secret) }, true},
		{"panic", func(context.Context, *hook.Submission) (any, error) { panic(secret) }, true},
		{"unencodable result", func(context.Context, *hook.Submission) (any, error) { return map[string]any{"c": make(chan int)}, nil }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, logs := newLogger()
			h := someHook()
			h.Actions[0].Success = tt.success
			rec := postForm(newEndpoint(h, st, hook.WithLogger(logger)), "token="+tok+"&some")
			if rec.Code != http.StatusInternalServerError {
				t.Errorf("status = %d, want 500", rec.Code)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			if strings.Contains(rec.Body.String(), secret) {
				t.Errorf("body %s contains the error text", rec.Body)
			}
			if tt.wantLogged && !strings.Contains(logs.String(), secret) {
				t.Errorf("log %s does not record the error", logs)
			}
		})
	}
}

func TestNewPanics(t *testing.T) {
	st, _ := sqliteStore(t)
	some := echoAction("some")
	tests := []struct {
		name string
		hook hook.Hook
		v    hook.Verifier
		opts []hook.Option
	}{
		{"empty field name", hook.Hook{Fields: []hook.Field{{Kind: hook.Int}}, Actions: []hook.Action{some}}, st, nil},
		{"zero kind", hook.Hook{Fields: []hook.Field{{Name: "a"}}, Actions: []hook.Action{some}}, st, nil},
		{"unknown kind", hook.Hook{Fields: []hook.Field{{Name: "a", Kind: hook.AuthToken + 1}}, Actions: []hook.Action{some}}, st, nil},
		{"choice without values", hook.Hook{Fields: []hook.Field{{Name: "a", Kind: hook.Choice}}, Actions: []hook.Action{some}}, st, nil},
		{"choice default not allowed", hook.Hook{Fields: []hook.Field{{Name: "a", Kind: hook.Choice, Values: []string{"x"}, Default: "y"}}, Actions: []hook.Action{some}}, st, nil},
		{"token with default", hook.Hook{Fields: []hook.Field{{Name: "t", Kind: hook.AuthToken, Default: "x"}}, Actions: []hook.Action{some}}, st, nil},
		{"int default string", hook.Hook{Fields: []hook.Field{{Name: "a", Kind: hook.Int, Default: "1"}}, Actions: []hook.Action{some}}, st, nil},
		{"bool default int", hook.Hook{Fields: []hook.Field{{Name: "a", Kind: hook.Bool, Default: 1}}, Actions: []hook.Action{some}}, st, nil},
		{"text default int", hook.Hook{Fields: []hook.Field{{Name: "a", Kind: hook.TextLine, Default: 1}}, Actions: []hook.Action{some}}, st, nil},
		{"two fields one name", hook.Hook{Fields: []hook.Field{{Name: "a", Kind: hook.Int}, {Name: "a", Kind: hook.Text}}, Actions: []hook.Action{some}}, st, nil},
		{"token without verifier", hook.Hook{Fields: []hook.Field{tokenField}, Actions: []hook.Action{some}}, nil, nil},
		{"no actions", hook.Hook{Fields: []hook.Field{tokenField}}, st, nil},
		{"action without name", hook.Hook{Actions: []hook.Action{{Success: some.Success}}}, st, nil},
		{"action without success", hook.Hook{Actions: []hook.Action{{Name: "some"}}}, st, nil},
		{"two actions one name", hook.Hook{Actions: []hook.Action{some, some}}, st, nil},
		{"action named like field", hook.Hook{Fields: []hook.Field{{Name: "some", Kind: hook.Int}}, Actions: []hook.Action{some}}, st, nil},
		{"zero body limit", hook.Hook{Actions: []hook.Action{some}}, st, []hook.Option{hook.WithMaxBodyBytes(0)}},
		{"negative part limit", hook.Hook{Actions: []hook.Action{some}}, st, []hook.Option{hook.WithMaxParts(-1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("New did not panic")
				}
			}()
			hook.New(tt.hook, tt.v, tt.opts...)
		})
	}
}

func TestNewPrefixedActionLikeField(t *testing.T) {
	st, _ := sqliteStore(t)
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("New panicked: %v", p)
		}
	}()
	h := hook.Hook{Fields: []hook.Field{{Name: "some", Kind: hook.Int}}, Actions: []hook.Action{echoAction("some")}}
	hook.New(h, st, hook.WithPrefix("form."))
}

func TestWithPrefixesEmptyPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("WithPrefixes() did not panic")
		}
	}()
	hook.WithPrefixes()
}

func TestKindString(t *testing.T) {
	tests := []struct {
		kind hook.Kind
		want string
	}{
		{hook.TextLine, "TextLine"},
		{hook.Text, "Text"},
		{hook.ASCIILine, "ASCIILine"},
		{hook.Int, "Int"},
		{hook.Bool, "Bool"},
		{hook.Choice, "Choice"},
		{hook.AuthToken, "AuthToken"},
		{hook.Kind(99), "Kind(99)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.kind.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}
