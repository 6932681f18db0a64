// Package hook serves JSON web hooks whose callers prove who they are with a
// shared token, after GroupServer's JSON endpoints and its gs.auth.token
// field.
//
// # Declaring a hook
//
// A [Hook] is a plain value: a label, a list of [Field] declarations and a
// list of [Action] values. [New] turns it into an [Endpoint], an
// [http.Handler]:
//
//	ep := hook.New(hook.Hook{
//		Label: "Some hook",
//		Fields: []hook.Field{
//			{Name: "token", Kind: hook.AuthToken, Title: "Token",
//				Description: "The authentication token", Required: true},
//		},
//		Actions: []hook.Action{{Name: "some", Label: "Some", Success: doSome}},
//	}, st)
//
// Declarations are values rather than struct tags because a field carries
// a title, a description, a default and a list of allowed values, which do
// not fit in a tag without a mini-language of their own, and because a
// value is checked once by [New], which panics on a mistake, instead of at
// every request. The shape follows GroupServer's zope.schema interfaces, so
// a GroupServer hook translates field by field.
//
// # Requests and answers
//
// Every answer has Content-Type application/json. A GET, or a POST that
// names no action, gets the hook's description: its label, its actions, and
// for each argument its description, whether it is required, its default
// and its allowed values. A POST names its action by sending the action's
// field, with any value (token=…&some). Bodies may be
// application/x-www-form-urlencoded or multipart/form-data; fields are never
// read from the URL query.
//
// A submission is checked in a fixed order:
//
//  1. The method, the body size and type, and the form encoding. Failures
//     answer 405, 413, 415 or 400.
//  2. The token. A missing or wrong token answers 401 with a
//     WWW-Authenticate challenge and one generic message, whatever else is
//     wrong. If the token store cannot be read the answer is 503: the
//     endpoint fails closed.
//  3. Every other field. Problems answer 400 with one "Title: problem"
//     message each, in GroupServer's form {"status": 100, "message": […]}.
//  4. The action's Success handler, whose result is sent with status 200.
//
// A token in the URL query is rejected with 400 and not checked, because
// URLs end up in access logs. No answer ever contains a submitted token.
//
// # Failures and the audit trail
//
// An action's Failure handler, by default [DefaultFailure], receives the
// errors. [LogAuthError], which a custom handler should call as GroupServer
// handlers call log_auth_error, writes an audit event for a token mismatch
// through the [audit.Writer] given with [WithAudit], and logs it. A store
// given there is written to during the request; an [audit.Batcher] over the
// store writes off the request path, in batches, which suits bursts of
// failures better (a burst of thousands on SQLite queues every writer on
// its single write lock).
//
// # Prefixes
//
// JSON hooks use no field prefix. GroupServer's ordinary forms, and clients
// written for them such as its mail gateway, prefix every field with
// "form." and send actions as "form.actions.NAME"; [WithPrefix] serves
// those.
package hook
