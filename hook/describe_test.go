package hook_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/hook"
)

// kindsHook declares a field of every kind.
func kindsHook() hook.Hook {
	return hook.Hook{
		Label: "Kinds",
		Fields: []hook.Field{
			tokenField,
			{Name: "name", Kind: hook.TextLine, Title: "Name", Description: "A name", Required: true, MaxLength: 10},
			{Name: "body", Kind: hook.Text, Title: "Body", Description: "A message"},
			{Name: "code", Kind: hook.ASCIILine, Title: "Code", Description: "A code", Default: "abc"},
			{Name: "count", Kind: hook.Int, Title: "Count", Description: "A number", Default: 7},
			{Name: "flag", Kind: hook.Bool, Title: "Flag", Description: "A flag", Default: true},
			{Name: "colour", Kind: hook.Choice, Title: "Colour", Description: "A colour", Values: []string{"red", "green"}, Default: "green"},
		},
		Actions: []hook.Action{echoAction("some", "token", "name", "body", "code", "count", "flag", "colour")},
	}
}

// argumentNames returns the keys of the description's arguments object in
// the order they were sent.
func argumentNames(t *testing.T, body []byte) []string {
	t.Helper()
	var d struct {
		Arguments json.RawMessage `json:"arguments"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("description %q is not JSON: %v", body, err)
	}
	dec := json.NewDecoder(bytes.NewReader(d.Arguments))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var names []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return names
}

func TestDescriptionRequests(t *testing.T) {
	st, tok := sqliteStore(t)
	ep := newEndpoint(kindsHook(), st)
	tests := []struct {
		name        string
		method      string
		contentType string
		body        string
	}{
		{"get", http.MethodGet, "", ""},
		{"head", http.MethodHead, "", ""},
		{"post empty", http.MethodPost, "", ""},
		{"post without action", http.MethodPost, formType, "token=" + tok + "&name=Ann"},
		{"post wrong token without action", http.MethodPost, formType, "token=wrong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(ep, request(tt.method, pageTarget, tt.contentType, tt.body))
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			if tt.method == http.MethodHead {
				return
			}
			d := decodeMap(t, rec)
			if got, want := d["message"], []any{"Kinds"}; !reflect.DeepEqual(got, want) {
				t.Errorf("message = %v, want %v", got, want)
			}
		})
	}
}

func TestDescriptionContent(t *testing.T) {
	st, _ := sqliteStore(t)
	rec := serve(newEndpoint(kindsHook(), st), request(http.MethodGet, pageTarget, "", ""))
	d := decodeMap(t, rec)

	if got, want := d["actions"], map[string]any{"some": "Echo some"}; !reflect.DeepEqual(got, want) {
		t.Errorf("actions = %v, want %v", got, want)
	}
	names := argumentNames(t, rec.Body.Bytes())
	if want := []string{"token", "name", "body", "code", "count", "flag", "colour"}; !slices.Equal(names, want) {
		t.Errorf("argument order = %v, want %v", names, want)
	}

	args, ok := d["arguments"].(map[string]any)
	if !ok {
		t.Fatalf("arguments = %v, want an object", d["arguments"])
	}
	tests := []struct {
		name string
		want map[string]any
	}{
		{"token", map[string]any{"Title": "Token", "Type": "AuthToken", "Description": "The authentication token", "Required": true}},
		{"name", map[string]any{"Title": "Name", "Type": "TextLine", "Description": "A name", "Required": true}},
		{"body", map[string]any{"Title": "Body", "Type": "Text", "Description": "A message", "Required": false}},
		{"code", map[string]any{"Title": "Code", "Type": "ASCIILine", "Description": "A code", "Required": false, "Default Value": "abc"}},
		{"count", map[string]any{"Title": "Count", "Type": "Int", "Description": "A number", "Required": false, "Default Value": 7.0}},
		{"flag", map[string]any{"Title": "Flag", "Type": "Bool", "Description": "A flag", "Required": false, "Default Value": true}},
		{"colour", map[string]any{"Title": "Colour", "Type": "Choice", "Description": "A colour", "Required": false,
			"Default Value": "green", "Available Values": []any{"red", "green"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := args[tt.name]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("arguments[%q] = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func TestDescriptionTokenAlwaysRequired(t *testing.T) {
	st, _ := sqliteStore(t)
	h := hook.Hook{
		Fields:  []hook.Field{{Name: "token", Kind: hook.AuthToken, Title: "Token"}},
		Actions: []hook.Action{echoAction("some")},
	}
	d := decodeMap(t, serve(newEndpoint(h, st), request(http.MethodGet, pageTarget, "", "")))
	args, _ := d["arguments"].(map[string]any)
	arg, _ := args["token"].(map[string]any)
	if arg["Required"] != true {
		t.Errorf("token Required = %v, want true for an AuthToken field declared without Required", arg["Required"])
	}
}

func TestDescriptionPrefixes(t *testing.T) {
	st, _ := sqliteStore(t)
	tests := []struct {
		name        string
		opt         hook.Option
		wantAction  string
		wantArgName string
	}{
		{"none", hook.WithPrefix(""), "some", "token"},
		{"form", hook.WithPrefix("form."), "form.actions.some", "form.token"},
		{"form first of two", hook.WithPrefixes("form.", ""), "form.actions.some", "form.token"},
		{"bare first of two", hook.WithPrefixes("", "form."), "some", "token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(newEndpoint(someHook(), st, tt.opt), request(http.MethodGet, pageTarget, "", ""))
			d := decodeMap(t, rec)
			actions, _ := d["actions"].(map[string]any)
			if _, ok := actions[tt.wantAction]; !ok {
				t.Errorf("actions = %v, want the key %q", actions, tt.wantAction)
			}
			if names := argumentNames(t, rec.Body.Bytes()); !slices.Equal(names, []string{tt.wantArgName}) {
				t.Errorf("arguments = %v, want [%s]", names, tt.wantArgName)
			}
		})
	}
}

func TestAnswerHeaders(t *testing.T) {
	st, tok := sqliteStore(t)
	ep := newEndpoint(someHook(), st)
	tests := []struct {
		name string
		req  *http.Request
	}{
		{"description", request(http.MethodGet, pageTarget, "", "")},
		{"success", request(http.MethodPost, pageTarget, formType, "token="+tok+"&some")},
		{"wrong token", request(http.MethodPost, pageTarget, formType, "token=wrong&some")},
		{"bad method", request(http.MethodDelete, pageTarget, "", "")},
		{"bad type", request(http.MethodPost, pageTarget, "text/plain", "token="+tok+"&some")},
		{"token in query", request(http.MethodGet, pageTarget+"?token=x", "", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(ep, tt.req)
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if !json.Valid(rec.Body.Bytes()) {
				t.Errorf("body %q is not valid JSON", rec.Body)
			}
		})
	}
}
