package hook

import (
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// AccessLog is a middleware that logs one line per request at info level:
// method, path, status, response size, duration and client address. It logs
// the path without the query string or ';' parameters, because they can
// carry secrets.
// When the logger does not log at info level, it costs nothing.
func AccessLog(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !logger.Enabled(r.Context(), slog.LevelInfo) {
				next.ServeHTTP(w, r)
				return
			}
			start := time.Now()
			rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
			next.ServeHTTP(rec, r)
			logger.InfoContext(r.Context(), "request",
				slog.String("method", r.Method),
				slog.String("path", loggedPath(r)),
				slog.Int("status", rec.status),
				slog.Int64("bytes", rec.bytes),
				slog.Duration("duration", time.Since(start)),
				slog.String("client", RemoteHost(r)),
			)
		})
	}
}

// loggedPath returns the request path up to any ';', because parameters
// after it, like a query, may carry a token sent in the wrong place.
func loggedPath(r *http.Request) string {
	p := r.URL.EscapedPath()
	if i := strings.IndexByte(p, ';'); i >= 0 {
		return p[:i] + ";…"
	}
	return p
}

// statusRecorder remembers the status and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status = code
		s.wrote = true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
