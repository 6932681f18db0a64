package hygiene

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// maxBody is the --max-body-bytes of the server in these tests, small so
// that a body too large is cheap to send.
const maxBody = 4096

// probe is one request of a failure path and the status it must get.
type probe struct {
	name string
	req  request
	want int
}

// tokens are the tokens and wrong strings that the probes present.
type tokens struct {
	valid, revoked, expired, rotatedOut, foreign, forged, badChecksum string
	// otherSite is a token of another site; legacy is GroupServer's
	// plain-text token and legacyWrong that token with one byte changed.
	otherSite, legacy, legacyWrong string
	// tooLong, newline and control are malformed wrong tokens: longer
	// than any token, with a trailing newline, and with a control byte.
	tooLong, newline, control string
	// basic is Basic credentials that carry a wrong token as password.
	basic string
	wrong []string
}

func TestHTTPFailures(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			testHTTPFailures(t, b.newDSN(t))
		})
	}
}

func testHTTPFailures(t *testing.T, dsn string) {
	s := newSuite(t)
	s.cliOK("migrate", "--dsn", dsn)
	tk := makeTokens(t, s, dsn)

	db := openDB(t, dsn)
	stored := storedDigests(t, db)
	for id, digest := range stored {
		s.secrets.add("stored digest of token "+id, digest, true)
	}
	for label, tok := range map[string]string{"valid": tk.valid, "revoked": tk.revoked, "expired": tk.expired, "rotated-out": tk.rotatedOut} {
		if got := strings.ToLower(stored[tokenID(tok)]); got != sha256Hex(tok) {
			t.Errorf("stored digest of the %s token = %q, want its hex SHA-256", label, got)
		}
	}

	srv := startServe(t, s.dir, nil, "--dsn", dsn, "--log-level", "debug", "--throttle-failures", "2",
		"--trusted-proxy", "127.0.0.1", "--max-body-bytes", fmt.Sprint(maxBody), "--metrics-listen", "127.0.0.1:0")
	for i, p := range probes(t, tk) {
		t.Run(p.name, func(t *testing.T) {
			// Each probe comes from its own address, so that only the
			// throttle case is throttled.
			p.req.headers = append(p.req.headers, [2]string{"X-Forwarded-For", fmt.Sprintf("127.0.1.%d", i+1)})
			got := srv.send(t, p.req)
			if got.status != p.want {
				t.Errorf("status = %d, want %d; body: %s", got.status, p.want, got.body)
			}
			s.secrets.check(t, "body", got.body)
			s.secrets.check(t, "headers", got.headerText())
		})
	}
	t.Run("throttled", func(t *testing.T) {
		testThrottled(t, s, srv, tk)
	})
	t.Run("metrics", func(t *testing.T) {
		m := metricsPattern.FindStringSubmatch(srv.stderr.String())
		if m == nil {
			t.Fatalf("serve logged no metrics address; stderr:\n%s", srv.stderr)
		}
		got := get(t, m[1])
		if got.status != http.StatusOK {
			t.Errorf("metrics: status %d, want 200", got.status)
		}
		s.secrets.check(t, "metrics body", got.body)
	})

	srv.stop(t)
	s.record("standard output of serve", srv.stdout.String())
	s.record("standard error of serve", srv.stderr.String())
	for _, table := range []string{"audit_event", "gs_auth_token_use"} {
		s.record("table "+table, strings.Join(dumpTable(t, db, table), "\n"))
	}
	s.cliOK("audit", "--dsn", dsn, "--json", "--limit", "1000")
	s.cliOK("audit", "--dsn", dsn, "--limit", "1000")
	s.cliOK("list", "--dsn", dsn, "--json")
	s.cliOK("list", "--dsn", dsn)

	t.Run("leaks", func(t *testing.T) {
		s.checkOutputs(t)
	})
	t.Run("coverage", func(t *testing.T) {
		checkCoverage(t, s, db, srv.stderr.String())
	})
}

// metricsPattern finds the address of the metrics in serve's log.
var metricsPattern = regexp.MustCompile(`serving metrics[^\n]*?(http://127\.0\.0\.1:[0-9]+/metrics)`)

// makeTokens creates the tokens of the probes with the commands and adds
// every one, and every wrong string, to the secrets.
func makeTokens(t *testing.T, s *suite, dsn string) tokens {
	t.Helper()
	var tk tokens
	tk.valid = s.newToken("valid token", "create", "--dsn", dsn, "--name", "hygiene-valid")
	tk.revoked = s.newToken("revoked token", "create", "--dsn", dsn, "--name", "hygiene-revoked")
	s.cliOK("revoke", "hygiene-revoked", "--dsn", dsn)
	tk.expired = s.newToken("expired token", "create", "--dsn", dsn, "--name", "hygiene-expired", "--expires", "1s")
	tk.rotatedOut = s.newToken("rotated-out token", "create", "--dsn", dsn, "--name", "hygiene-rotated")
	s.newToken("rotation's new token", "rotate", "hygiene-rotated", "--dsn", dsn, "--grace", "0")
	tk.otherSite = s.newToken("other site's token", "create", "--dsn", dsn, "--name", "hygiene-other", "--site", "other-site")
	tk.legacy = s.legacyToken("plain-text token", dsn)
	tk.legacyWrong = swapLast(tk.legacy)
	s.secrets.addToken("plain-text token with one byte changed", tk.legacyWrong)
	foreignDSN := "sqlite:" + filepath.Join(t.TempDir(), "foreign.db")
	tk.foreign = s.newToken("token of another store", "create", "--dsn", foreignDSN, "--name", "foreign")

	tk.forged = forge(t, tokenID(tk.valid))
	s.secrets.addToken("forged token with a real id", tk.forged)
	tk.badChecksum = swapLast(tk.valid)
	s.secrets.add("valid token with a bad checksum", tk.badChecksum, false)
	for i := range 12 {
		w := canary(t)
		tk.wrong = append(tk.wrong, w)
		s.secrets.add(fmt.Sprintf("wrong token %d", i), w, false)
		s.secrets.add(fmt.Sprintf("SHA-256 of wrong token %d", i), sha256Hex(w), true)
	}

	// The wrong tokens above are substrings of these, so only their
	// digests and the encoded credentials are new secrets.
	tk.tooLong = strings.Repeat(tk.wrong[6], 40)
	tk.newline = tk.wrong[7] + "\n"
	tk.control = tk.wrong[7] + "\x01"
	tk.basic = base64.StdEncoding.EncodeToString([]byte("user:" + tk.wrong[5]))
	for label, tok := range map[string]string{
		"overlong wrong token":            tk.tooLong,
		"wrong token with a newline":      tk.newline,
		"wrong token with a control byte": tk.control,
		"valid token with a bad checksum": tk.badChecksum,
	} {
		s.secrets.add("SHA-256 of the "+label, sha256Hex(tok), true)
	}
	s.secrets.add("Basic credentials", tk.basic, false)
	s.waitExpired(dsn, "hygiene-expired")
	return tk
}

// probes returns the requests of every failure path but throttling, and a
// few successes, whose responses must not echo the token either.
func probes(t *testing.T, tk tokens) []probe {
	t.Helper()
	w := tk.wrong
	form := func(tok string) string { return "token=" + url.QueryEscape(tok) + "&some" }
	bearer := func(v string) [2]string { return [2]string{"Authorization", v} }

	return []probe{
		{"valid", post("/some-hook.json", form(tk.valid)), http.StatusOK},
		{"valid bearer", post("/some-hook.json", "some", bearer("Bearer "+tk.valid)), http.StatusOK},
		{"valid check hook", post("/gs-auth-token-check.json", "token="+tk.valid+"&check"), http.StatusOK},
		{"missing token", post("/some-hook.json", "some"), http.StatusUnauthorized},
		{"wrong", post("/some-hook.json", form(w[0])), http.StatusUnauthorized},
		{"wrong bearer", post("/some-hook.json", "some", bearer("Bearer "+w[1])), http.StatusUnauthorized},
		{"wrong check hook", post("/gs-auth-token-check.json", "token="+w[2]+"&check"), http.StatusUnauthorized},
		{"wrong form prefix", post("/some-hook.json", "form.token="+w[3]+"&form.actions.some"), http.StatusUnauthorized},
		{"wrong multipart", multipartPost(t, w[4]), http.StatusUnauthorized},
		{"foreign", post("/some-hook.json", form(tk.foreign)), http.StatusUnauthorized},
		{"forged secret", post("/some-hook.json", form(tk.forged)), http.StatusUnauthorized},
		{"revoked", post("/some-hook.json", form(tk.revoked)), http.StatusUnauthorized},
		{"revoked bearer", post("/some-hook.json", "some", bearer("Bearer "+tk.revoked)), http.StatusUnauthorized},
		{"expired", post("/some-hook.json", form(tk.expired)), http.StatusUnauthorized},
		{"rotated out", post("/some-hook.json", form(tk.rotatedOut)), http.StatusUnauthorized},
		{"other site", post("/some-hook.json", form(tk.otherSite)), http.StatusUnauthorized},
		{"plain-text valid", post("/some-hook.json", form(tk.legacy)), http.StatusOK},
		{"plain-text wrong", post("/some-hook.json", form(tk.legacyWrong)), http.StatusUnauthorized},
		{"plain-text bearer wrong", post("/some-hook.json", "some", bearer("Bearer "+tk.legacyWrong)), http.StatusUnauthorized},
		{"bad checksum", post("/some-hook.json", form(tk.badChecksum)), http.StatusUnauthorized},
		{"too long", post("/some-hook.json", form(tk.tooLong)), http.StatusUnauthorized},
		{"trailing newline", post("/some-hook.json", form(tk.newline)), http.StatusUnauthorized},
		{"control byte", post("/some-hook.json", form(tk.control)), http.StatusUnauthorized},
		{"bearer with space", post("/some-hook.json", "some", bearer("Bearer "+w[8]+" extra")), http.StatusUnauthorized},
		{"bearer with tab", post("/some-hook.json", "some", bearer("Bearer\t"+w[8])), http.StatusUnauthorized},
		{"other scheme", post("/some-hook.json", "some", bearer("Token "+w[8])), http.StatusUnauthorized},
		{"basic scheme", post("/some-hook.json", "some", bearer("Basic "+tk.basic)), http.StatusUnauthorized},
		{"basic scheme valid", post("/some-hook.json", "some", bearer("Basic "+tk.valid)), http.StatusUnauthorized},
		{"two bearers", post("/some-hook.json", "some", bearer("Bearer "+w[8]), bearer("Bearer "+tk.valid)), http.StatusUnauthorized},
		{"bearer and body differ", post("/some-hook.json", form(w[9]), bearer("Bearer "+tk.valid)), http.StatusBadRequest},
		{"token twice", post("/some-hook.json", "token="+w[9]+"&token="+tk.revoked+"&some"), http.StatusBadRequest},
		{"invalid UTF-8", post("/some-hook.json", "token=%FF"+w[9]+"&some"), http.StatusBadRequest},
		{"bad percent-encoding", post("/some-hook.json", "token="+w[9]+"%ZZ&some"), http.StatusBadRequest},
		{"unsupported type", request{method: http.MethodPost, target: "/some-hook.json", ctype: "text/plain", body: form(w[9])}, http.StatusUnsupportedMediaType},
		{"body too large", post("/some-hook.json", form(w[9])+"&pad="+strings.Repeat("x", maxBody)), http.StatusRequestEntityTooLarge},
		{"method PUT", request{method: http.MethodPut, target: "/some-hook.json", ctype: "application/x-www-form-urlencoded", body: form(w[9])}, http.StatusMethodNotAllowed},
		{"query POST", post("/some-hook.json?token="+w[10], "some"), http.StatusBadRequest},
		{"query valid GET", request{method: http.MethodGet, target: "/some-hook.json?token=" + tk.valid}, http.StatusBadRequest},
		{"query form prefix", request{method: http.MethodGet, target: "/some-hook.json?form.token=" + tk.valid}, http.StatusBadRequest},
		{"query semicolon", request{method: http.MethodGet, target: "/some-hook.json?x=1;token=" + w[10]}, http.StatusBadRequest},
		{"query escaped name", request{method: http.MethodGet, target: "/some-hook.json?%74oken=" + w[10]}, http.StatusBadRequest},
		{"query check hook", request{method: http.MethodGet, target: "/gs-auth-token-check.json?token=" + tk.valid}, http.StatusBadRequest},
		{"query plain-text", post("/some-hook.json?token="+tk.legacy, "some"), http.StatusBadRequest},
		{"query on index", request{method: http.MethodGet, target: "/?token=" + w[11]}, http.StatusOK},
		{"query on unknown path", request{method: http.MethodGet, target: "/nothing-here.json?token=" + w[11]}, http.StatusNotFound},
	}
}

// multipartPost returns a multipart/form-data POST of tok and the action.
func multipartPost(t *testing.T, tok string) request {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("token", tok); err != nil {
		t.Fatal(err)
	}
	if err := mw.WriteField("some", ""); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return request{method: http.MethodPost, target: "/some-hook.json", ctype: mw.FormDataContentType(), body: buf.String()}
}

// testThrottled locks one address out with --throttle-failures 2 and
// checks the 429 responses, which come before any token check.
func testThrottled(t *testing.T, s *suite, srv *server, tk tokens) {
	from := [2]string{"X-Forwarded-For", "127.0.2.1"}
	steps := []struct {
		tok  string
		want int
	}{
		{tk.wrong[0], http.StatusUnauthorized},
		{tk.revoked, http.StatusUnauthorized},
		{tk.wrong[1], http.StatusTooManyRequests},
		{tk.valid, http.StatusTooManyRequests},
		{tk.expired, http.StatusTooManyRequests},
	}
	for i, step := range steps {
		got := srv.send(t, post("/some-hook.json", "token="+url.QueryEscape(step.tok)+"&some", from))
		if got.status != step.want {
			t.Errorf("request %d: status = %d, want %d; body: %s", i+1, got.status, step.want, got.body)
		}
		if step.want == http.StatusTooManyRequests && got.header.Get("Retry-After") == "" {
			t.Errorf("request %d: 429 without Retry-After", i+1)
		}
		s.secrets.check(t, fmt.Sprintf("body of request %d", i+1), got.body)
		s.secrets.check(t, fmt.Sprintf("headers of request %d", i+1), got.headerText())
	}
}

// checkCoverage checks that the failure paths really ran: their log lines
// are in the log and their audit events in the table. Without them, a
// clean leak check would prove nothing.
func checkCoverage(t *testing.T, s *suite, db *sql.DB, log string) {
	t.Helper()
	for _, msg := range []string{
		`msg="authentication token mismatch"`,
		`msg="request without a token"`,
		`msg="token in the URL query rejected"`,
		`msg="request rejected"`,
		`msg="client locked out after too many failed authentications"`,
		`msg="request from a locked-out client refused"`,
		`msg=request `,
	} {
		if !strings.Contains(log, msg) {
			t.Errorf("serve's log has no line with %s", msg)
		}
	}

	codes := auditCodes(t, db)
	for code, what := range map[string]string{"1": "token mismatch", "2": "expired token", "3": "revoked token",
		"4": "other site's token", "5": "client throttled"} {
		if codes[code] == 0 {
			t.Errorf("audit_event has no row of code %s (%s); codes: %v", code, what, codes)
		}
	}

	printed := false
	for _, o := range s.outputs {
		if o.printed != "" && len(s.secrets.find(o.text)) > 0 {
			printed = true
			break
		}
	}
	if !printed {
		t.Error("the leak check finds no secret in the output of create, which prints a token")
	}
}

// swapLast returns tok with its last byte changed.
func swapLast(tok string) string {
	last := byte('a')
	if tok[len(tok)-1] == last {
		last = 'b'
	}
	return tok[:len(tok)-1] + string(last)
}

// TestServeFirstToken starts serve on an empty store, so that it creates a
// token and prints it on standard output, and checks that no other output
// contains the token.
func TestServeFirstToken(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := newSuite(t)
			dsn := b.newDSN(t)
			s.cliOK("migrate", "--dsn", dsn)
			srv := startServe(t, s.dir, nil, "--dsn", dsn, "--log-level", "debug")
			tok := printedToken(t, srv)
			s.secrets.addToken("token printed by serve", tok)

			got := srv.send(t, post("/some-hook.json", "token="+tok+"&some"))
			if got.status != http.StatusOK {
				t.Errorf("printed token: status %d, want 200", got.status)
			}
			s.secrets.check(t, "body", got.body)
			s.secrets.check(t, "headers", got.headerText())

			srv.stop(t)
			s.outputs = append(s.outputs, output{where: "standard output of serve", text: srv.stdout.String(), printed: tok})
			s.record("standard error of serve", srv.stderr.String())
			for id, digest := range storedDigests(t, openDB(t, dsn)) {
				s.secrets.add("stored digest of token "+id, digest, true)
			}
			s.checkOutputs(t)
		})
	}
}

// printedToken waits up to 10 seconds for the token that serve prints on
// standard output when it creates one.
func printedToken(t *testing.T, srv *server) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := indentedTokenPattern.FindStringSubmatch(srv.stdout.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve printed no token within 10 s; stdout: %q", srv.stdout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
