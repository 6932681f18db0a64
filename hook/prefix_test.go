package hook_test

import (
	"net/http"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/hook"
)

func TestPrefixes(t *testing.T) {
	st, tok := sqliteStore(t)
	type submission struct {
		name string
		body string
		want int
	}
	tests := []struct {
		name        string
		opt         hook.Option
		submissions []submission
	}{
		{"none", hook.WithPrefix(""), []submission{
			{"bare", "token=" + tok + "&some", http.StatusOK},
			{"bare wrong token", "token=wrong&some", http.StatusUnauthorized},
			{"form names no action", "form.token=" + tok + "&form.actions.some", http.StatusOK},
		}},
		{"form", hook.WithPrefix("form."), []submission{
			{"form", "form.token=" + tok + "&form.actions.some", http.StatusOK},
			{"form wrong token", "form.token=wrong&form.actions.some", http.StatusUnauthorized},
			{"form with bare token", "token=" + tok + "&form.actions.some", http.StatusUnauthorized},
			{"form action without actions part", "form.token=" + tok + "&form.some", http.StatusOK},
			{"bare names no action", "token=" + tok + "&some", http.StatusOK},
		}},
		{"both", hook.WithPrefixes("", "form."), []submission{
			{"bare", "token=" + tok + "&some", http.StatusOK},
			{"form", "form.token=" + tok + "&form.actions.some", http.StatusOK},
			{"bare wrong token", "token=wrong&some", http.StatusUnauthorized},
			{"form wrong token", "form.token=wrong&form.actions.some", http.StatusUnauthorized},
			{"form action with bare token", "token=" + tok + "&form.actions.some", http.StatusUnauthorized},
			{"bare action with form token", "form.token=" + tok + "&some", http.StatusUnauthorized},
			{"both actions", "token=" + tok + "&some&form.token=" + tok + "&form.actions.some", http.StatusBadRequest},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := newEndpoint(someHook(), st, tt.opt)
			for _, s := range tt.submissions {
				t.Run(s.name, func(t *testing.T) {
					if rec := postForm(ep, s.body); rec.Code != s.want {
						t.Errorf("status = %d, want %d; body %s", rec.Code, s.want, rec.Body)
					}
				})
			}
		})
	}
}

func TestPrefixActionRuns(t *testing.T) {
	st, tok := sqliteStore(t)
	ep := newEndpoint(kindsHook(), st, hook.WithPrefixes("", "form."))
	tests := []struct {
		name string
		body string
	}{
		{"bare", "token=" + tok + "&some&name=Ann&count=3&form.count=4"},
		{"form", "form.token=" + tok + "&form.actions.some&form.name=Ann&form.count=3&count=4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := postForm(ep, tt.body)
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
			}
			values, _ := decodeMap(t, rec)["values"].(map[string]any)
			if values["count"] != 3.0 {
				t.Errorf("count = %v, want 3, the value with the action's prefix", values["count"])
			}
		})
	}
}

func TestPrefixMultipart(t *testing.T) {
	st, tok := sqliteStore(t)
	ep := newEndpoint(someHook(), st, hook.WithPrefixes("", "form."))
	body, ct := multipartBody(t, [2]string{"form.token", tok}, [2]string{"form.actions.some", ""})
	rec := serve(ep, request(http.MethodPost, pageTarget, ct, body))
	if rec.Code != http.StatusOK {
		t.Errorf("status = %d, want 200; body %s", rec.Code, rec.Body)
	}
}
