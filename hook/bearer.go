package hook

import (
	"net/http"
	"strings"
)

// maxAuthorization bounds the Authorization header the endpoint parses. A
// longer one is rejected at once.
const maxAuthorization = 1024

// bearerToken returns the token of an "Authorization: Bearer TOKEN" header,
// whether the header is present, and whether it is well formed. The scheme
// is matched without regard to case and separated from the token by one or
// more spaces, as RFC 9110 section 11.4 writes credentials; the token must
// be a token68. Anything else, including a second Authorization header, an
// empty token, a tab, or another scheme, is malformed.
func bearerToken(r *http.Request) (tok string, present, ok bool) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return "", false, true
	}
	if len(values) > 1 || len(values[0]) > maxAuthorization {
		return "", true, false
	}
	scheme, rest, found := strings.Cut(values[0], " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", true, false
	}
	tok = strings.TrimLeft(rest, " ")
	if !isToken68(tok) {
		return "", true, false
	}
	return tok, true, true
}

// isToken68 reports whether s is a token68 of RFC 9110: one or more of
// A-Z a-z 0-9 - . _ ~ + / followed by any number of '='.
func isToken68(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}
