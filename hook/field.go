package hook

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is the type of a field's value, after the zope.schema fields that
// GroupServer hooks declare.
type Kind int

const (
	// TextLine is one line of Unicode text: no carriage return or line feed.
	TextLine Kind = iota + 1
	// Text is Unicode text that may span lines, such as an email message.
	Text
	// ASCIILine is one line of ASCII text.
	ASCIILine
	// Int is a decimal integer.
	Int
	// Bool is a flag: "1", "true", "on" or "yes" for true, and "0",
	// "false", "off" or "no" for false, in any case. An empty value counts
	// as absent, so the field's Default applies.
	Bool
	// Choice is one of the field's Values.
	Choice
	// AuthToken is the authentication token, GroupServer's AuthToken field.
	// The endpoint checks it before anything else, whatever Required is:
	// a hook with a token field never runs without a valid token.
	AuthToken
)

// String returns the kind's name, as it appears in a hook's description.
func (k Kind) String() string {
	switch k {
	case TextLine:
		return "TextLine"
	case Text:
		return "Text"
	case ASCIILine:
		return "ASCIILine"
	case Int:
		return "Int"
	case Bool:
		return "Bool"
	case Choice:
		return "Choice"
	case AuthToken:
		return "AuthToken"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Field declares one argument of a hook.
type Field struct {
	// Name is the form field name, without the endpoint's prefix.
	Name string
	// Kind is the type of the value.
	Kind Kind
	// Title names the field in error messages, as in "Title: problem".
	Title string
	// Description is the field's purpose, shown in the hook's description.
	Description string
	// Required makes an absent or empty value an error.
	Required bool
	// Default is the value of an absent optional field: a string for the
	// text kinds and Choice, an int for Int and a bool for Bool. Nil means
	// the zero value.
	Default any
	// Values lists the allowed values of a Choice field.
	Values []string
	// MaxLength, when positive, is the longest value accepted, in bytes.
	MaxLength int
}

// check panics if f is not a valid declaration. It runs once, when the
// endpoint is built.
func (f Field) check() {
	if f.Name == "" {
		panic("hook: field with an empty Name")
	}
	if f.Kind < TextLine || f.Kind > AuthToken {
		panic(fmt.Sprintf("hook: field %q has invalid Kind %d", f.Name, f.Kind))
	}
	if f.Kind == Choice && len(f.Values) == 0 {
		panic(fmt.Sprintf("hook: Choice field %q has no Values", f.Name))
	}
	if f.Kind == AuthToken && f.Default != nil {
		panic(fmt.Sprintf("hook: AuthToken field %q cannot have a Default", f.Name))
	}
	if f.Default == nil {
		return
	}
	var ok bool
	switch f.Kind {
	case Int:
		_, ok = f.Default.(int)
	case Bool:
		_, ok = f.Default.(bool)
	case Choice:
		var s string
		s, ok = f.Default.(string)
		ok = ok && f.allows(s)
	default:
		_, ok = f.Default.(string)
	}
	if !ok {
		panic(fmt.Sprintf("hook: field %q has a Default of type %T that does not fit its Kind %s", f.Name, f.Default, f.Kind))
	}
}

func (f Field) allows(v string) bool {
	for _, a := range f.Values {
		if a == v {
			return true
		}
	}
	return false
}

func (f Field) title() string {
	if f.Title != "" {
		return f.Title
	}
	return f.Name
}

// defaultValue returns the value of the field when it is absent.
func (f Field) defaultValue() any {
	if f.Default != nil {
		return f.Default
	}
	switch f.Kind {
	case Int:
		return 0
	case Bool:
		return false
	}
	return ""
}

// parse converts a submitted value, which is valid UTF-8, to the field's
// type. Problems are phrased for "Title: problem" messages and never quote
// the value, because a misplaced secret may be in it.
func (f Field) parse(raw string) (any, error) {
	if f.MaxLength > 0 && len(raw) > f.MaxLength {
		return nil, f.problem(ErrInvalid, fmt.Sprintf("is %d bytes long, more than the maximum of %d", len(raw), f.MaxLength))
	}
	switch f.Kind {
	case TextLine, AuthToken:
		if strings.ContainsAny(raw, "\r\n") {
			return nil, f.problem(ErrInvalid, "must be a single line")
		}
		return raw, nil
	case Text:
		return raw, nil
	case ASCIILine:
		if strings.ContainsAny(raw, "\r\n") {
			return nil, f.problem(ErrInvalid, "must be a single line")
		}
		for i := 0; i < len(raw); i++ {
			if raw[i] >= utf8.RuneSelf {
				return nil, f.problem(ErrInvalid, "must contain only ASCII characters")
			}
		}
		return raw, nil
	case Int:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return nil, f.problem(ErrInvalid, "must be a whole number, such as 42")
		}
		return n, nil
	case Bool:
		switch strings.ToLower(raw) {
		case "1", "true", "on", "yes":
			return true, nil
		case "0", "false", "off", "no":
			return false, nil
		}
		return nil, f.problem(ErrInvalid, "must be true or false (also accepted: 1 or 0, on or off, yes or no)")
	case Choice:
		if !f.allows(raw) {
			return nil, f.problem(ErrInvalid, "must be one of "+strings.Join(quoteAll(f.Values), ", "))
		}
		return raw, nil
	}
	return nil, f.problem(ErrInvalid, "has an unknown kind")
}

func (f Field) problem(kind error, msg string) *FieldError {
	return &FieldError{Field: f.Name, Title: f.title(), Problem: msg, Err: kind}
}

func quoteAll(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strconv.Quote(v)
	}
	return out
}
