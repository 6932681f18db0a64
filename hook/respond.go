package hook

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// StatusValidationError is the status GroupServer puts in the JSON body of
// every failed submission.
const StatusValidationError = 100

// AuthFailedMessage is the one message a client gets for a missing, wrong,
// expired or revoked token. The precise reason goes to the log and the
// audit trail only.
const AuthFailedMessage = "Authentication failed: the token is missing or not valid for this site."

// Header values shared by every response. net/http only reads them, so one
// slice serves all responses without an allocation each.
var (
	jsonContentType = []string{"application/json"}
	noSniff         = []string{"nosniff"}
	noStore         = []string{"no-store"}
)

// writeJSON sends v as JSON, indented as GroupServer's responses are, with
// the given status. A json.RawMessage is sent as it is.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, ok := v.(json.RawMessage)
	if !ok {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "    ")
		if err := enc.Encode(v); err != nil {
			status = http.StatusInternalServerError
			buf.Reset()
			buf.WriteString(`{"status": 100, "message": ["The answer could not be encoded as JSON."]}` + "\n")
		}
		body = buf.Bytes()
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["X-Content-Type-Options"] = noSniff
	h["Cache-Control"] = noStore
	w.WriteHeader(status)
	w.Write(body)
}

// writeMessages sends GroupServer's error body with the given status.
func writeMessages(w http.ResponseWriter, status int, messages ...string) {
	var buf bytes.Buffer
	buf.WriteString("{\n    \"status\": 100,\n    \"message\": [")
	for i, m := range messages {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString("\n        ")
		q, _ := json.Marshal(m)
		buf.Write(q)
	}
	buf.WriteString("\n    ]\n}\n")
	writeJSON(w, status, json.RawMessage(buf.Bytes()))
}

// WriteErrors writes the response to a failed submission: 401 with a WWW-Authenticate
// challenge and [AuthFailedMessage] alone when errs holds a token mismatch,
// and otherwise 400 with one "Title: problem" message per error.
func WriteErrors(w http.ResponseWriter, r *http.Request, errs []error) {
	if IsAuthError(errs) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="web hooks"`)
		writeMessages(w, http.StatusUnauthorized, AuthFailedMessage)
		return
	}
	msgs := make([]string, 0, len(errs))
	for _, err := range errs {
		msgs = append(msgs, err.Error())
	}
	writeMessages(w, http.StatusBadRequest, msgs...)
}

// DefaultFailure is the failure handler of an action that sets none: it
// calls [LogAuthError] and then [WriteErrors].
func DefaultFailure(w http.ResponseWriter, r *http.Request, errs []error) {
	LogAuthError(r.Context(), r, errs)
	WriteErrors(w, r, errs)
}

// argument describes one field in a hook's description, with the keys
// GroupServer's JSON endpoints use.
type argument struct {
	Title       string   `json:"Title,omitempty"`
	Type        string   `json:"Type"`
	Description string   `json:"Description"`
	Required    bool     `json:"Required"`
	Default     any      `json:"Default Value,omitempty"`
	Values      []string `json:"Available Values,omitempty"`
}

// description is the answer to a request that names no action.
type description struct {
	Message   []string          `json:"message"`
	Actions   map[string]string `json:"actions"`
	Arguments orderedArguments  `json:"arguments"`
}

// orderedArguments encodes the arguments as a JSON object in declaration
// order.
type orderedArguments struct {
	names []string
	args  []argument
}

func (o orderedArguments) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, name := range o.names {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := json.Marshal(name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(o.args[i])
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// describe builds the hook's description once, when the endpoint is made.
func (e *Endpoint) describe() []byte {
	d := description{Actions: make(map[string]string)}
	if e.hook.Label != "" {
		d.Message = []string{e.hook.Label}
	}
	for _, a := range e.hook.Actions {
		d.Actions[e.actionField(e.prefixes[0], a.Name)] = a.Label
	}
	for _, f := range e.hook.Fields {
		d.Arguments.names = append(d.Arguments.names, e.prefixes[0]+f.Name)
		d.Arguments.args = append(d.Arguments.args, argument{
			Title:       f.Title,
			Type:        f.Kind.String(),
			Description: f.Description,
			Required:    f.Required || f.Kind == AuthToken,
			Default:     f.Default,
			Values:      f.Values,
		})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "    ")
	if err := enc.Encode(d); err != nil {
		panic("hook: the description cannot be encoded: " + err.Error())
	}
	return buf.Bytes()
}

func (e *Endpoint) writeDescription(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, json.RawMessage(e.description))
}
