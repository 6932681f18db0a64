package hook

import (
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
)

// requestError is a request the endpoint rejects before looking at its
// token: the status and a message that is safe to send.
type requestError struct {
	status  int
	message string
}

func (e *requestError) Error() string { return e.message }

func reject(status int, message string) *requestError {
	return &requestError{status: status, message: message}
}

var errTooLarge = errors.New("request body too large")

// form holds the submitted values of a request body, by field name.
type form map[string][]string

// parseBody reads the body of r into a form. Only the body is read, never
// the URL query. It returns a *requestError for a body that is too large,
// of an unsupported type, or malformed.
func (e *Endpoint) parseBody(w http.ResponseWriter, r *http.Request) (form, *requestError) {
	if r.ContentLength > e.maxBody {
		return nil, e.tooLarge()
	}
	// The header map's own key, which is canonical, saves Get's
	// canonicalization on every request.
	var ct string
	if v := r.Header["Content-Type"]; len(v) > 0 {
		ct = v[0]
	}
	if ct == "" && (r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody) {
		return form{}, nil
	}
	// Scripts send this type without parameters nearly always, and it
	// needs no parsing then.
	if strings.EqualFold(ct, urlEncoded) {
		return e.parseURLEncoded(w, r)
	}
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, reject(http.StatusUnsupportedMediaType,
			"The Content-Type header is missing or malformed: send application/x-www-form-urlencoded or multipart/form-data.")
	}
	switch mediaType {
	case urlEncoded:
		return e.parseURLEncoded(w, r)
	case "multipart/form-data":
		if params["boundary"] == "" {
			return nil, reject(http.StatusBadRequest, "The multipart/form-data body has no boundary parameter in its Content-Type.")
		}
		return e.parseMultipart(multipart.NewReader(http.MaxBytesReader(w, r.Body, e.maxBody), params["boundary"]))
	}
	return nil, reject(http.StatusUnsupportedMediaType,
		"Unsupported Content-Type "+mediaType+": send application/x-www-form-urlencoded or multipart/form-data.")
}

const urlEncoded = "application/x-www-form-urlencoded"

func (e *Endpoint) tooLarge() *requestError {
	return reject(http.StatusRequestEntityTooLarge, "The request body is larger than this hook accepts.")
}

func (e *Endpoint) parseURLEncoded(w http.ResponseWriter, r *http.Request) (form, *requestError) {
	data, err := e.readBody(w, r)
	if err != nil {
		return nil, e.readError(err)
	}
	values, err := url.ParseQuery(string(data))
	if err != nil {
		return nil, reject(http.StatusBadRequest,
			"The body is not valid application/x-www-form-urlencoded data: check its percent-encoding and use & between fields.")
	}
	if len(values) > e.maxParts {
		return nil, reject(http.StatusRequestEntityTooLarge, "The body has more fields than this hook accepts.")
	}
	return form(values), nil
}

// presizeMax is the largest declared body length that readBody allocates
// a buffer for before the body arrives. Larger bodies grow their buffer as
// data comes, so that a client that declares a length and sends nothing
// holds little memory: no more than the server's own 4 KiB read buffer.
const presizeMax = 4 << 10

// readBody reads the whole body, up to the endpoint's limit. A small body
// of declared length is read into a buffer one byte larger, so that the
// end of the body is seen without growing it. The limit is enforced on
// what is read, not on the declared length, because a handler in front of
// this one may have replaced the body.
func (e *Endpoint) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	size := 512
	if r.ContentLength >= 0 && r.ContentLength < presizeMax {
		size = int(r.ContentLength) + 1
	}
	body := http.MaxBytesReader(w, r.Body, e.maxBody)
	data := make([]byte, 0, size)
	for {
		n, err := body.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return nil, err
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
	}
}

func (e *Endpoint) parseMultipart(mr *multipart.Reader) (form, *requestError) {
	f := form{}
	for parts := 0; ; parts++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			return f, nil
		}
		if err != nil {
			return nil, e.readError(err)
		}
		if parts >= e.maxParts {
			p.Close()
			return nil, reject(http.StatusRequestEntityTooLarge, "The multipart body has more parts than this hook accepts.")
		}
		name := p.FormName()
		data, err := io.ReadAll(p)
		p.Close()
		if err != nil {
			return nil, e.readError(err)
		}
		if name == "" {
			continue
		}
		f[name] = append(f[name], string(data))
	}
}

// readError turns an error from reading the body into a rejection: 413 when
// the body passed the limit, 400 when it was malformed.
func (e *Endpoint) readError(err error) *requestError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || errors.Is(err, errTooLarge) {
		return e.tooLarge()
	}
	if strings.Contains(err.Error(), "too large") || strings.Contains(err.Error(), "too many") {
		return reject(http.StatusRequestEntityTooLarge, "A multipart part header is larger than this hook accepts.")
	}
	return reject(http.StatusBadRequest, "The request body could not be read as form data: it is malformed or was cut short.")
}
