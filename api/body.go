package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/slum-fleet/slum"
	"golang.org/x/sync/semaphore"

	"github.com/slum-fleet/slum/api/wire"
)

// errBody is a request body the API refuses, with the kind to answer.
type errBody struct {
	kind wire.ErrorKind
	msg  string
}

func (e *errBody) Error() string { return e.msg }

// decode reads a JSON request body into v: application/json, at most
// limit bytes, one value, no field v does not have. Nothing is done with a
// body that fails any of these.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &errBody{wire.KindUnsupported, "the request body must be JSON, sent with Content-Type: application/json"}
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err, limit)
	}
	if err := dec.Decode(new(json.RawMessage)); err != io.EOF {
		if err == nil {
			return &errBody{wire.KindInvalid, "request body: more than one JSON value"}
		}
		return bodyError(err, limit)
	}
	return nil
}

func bodyError(err error, limit int64) error {
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		return &errBody{wire.KindTooLarge, fmt.Sprintf("the request body is larger than %d bytes", limit)}
	case errors.Is(err, errBusy):
		return errBusy
	case errors.Is(err, io.EOF):
		return &errBody{wire.KindInvalid, "the request body is empty: send a JSON object"}
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return &errBody{wire.KindInvalid, "the request body is not valid JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
	case errors.As(err, &typ):
		return &errBody{wire.KindInvalid, fmt.Sprintf("request body: field %q must be %s, not a JSON %s", typ.Field, typ.Type, typ.Value)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return &errBody{wire.KindInvalid, "request body: " + strings.TrimPrefix(err.Error(), "json: ") + " (see the API's documentation)"}
	}
	return &errBody{wire.KindInvalid, "request body: " + strings.TrimPrefix(err.Error(), "json: ")}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers with an error of kind.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, kind wire.ErrorKind, msg string) {
	writeJSON(w, kind.Status(), wire.Error{Error: wire.ErrorBody{Kind: kind, Message: msg}})
}

// writeError answers with err: its kind, status and message, the message
// the CLI would print locally. A refused mass prune comes with its plan.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var eb *errBody
	if errors.As(err, &eb) {
		s.fail(w, r, eb.kind, eb.msg)
		return
	}
	if r.Context().Err() != nil {
		// The client went away: nobody reads the answer.
		return
	}
	kind := wire.KindOf(err)
	if kind == wire.KindInternal {
		s.log.Error("API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, kind.Status(), wire.Error{Error: wire.ErrorBody{Kind: kind, Message: err.Error()}})
}

// bodyLimit is how large a request's body may be: what its operation
// carries, and what the caller's role has any business sending.
func (s *Server) bodyLimit(kind wire.Body, role slum.APIRole) int64 {
	switch {
	case kind == wire.NoBody || role == slum.RoleRouter:
		return 0
	case kind == wire.FileBody && role == slum.RoleAdmin:
		return s.cfg.MaxFileBody
	case kind == wire.FileBody:
		return s.cfg.MaxReadFileBody
	}
	return s.cfg.MaxBody
}

// admitBody lets a request's body be read, or refuses it: a body
// declared larger than limit at once (413), before a byte of it is read;
// a large one while the API already reads as much as BodyBudget of other
// large bodies (503: retry), so that no number of large requests takes
// more memory than the budget. A chunked body is admitted chunk by chunk
// as it streams. release gives back what the body took.
func (s *Server) admitBody(r *http.Request, limit int64) (release func(), err error) {
	if r.ContentLength > limit || (limit == 0 && r.ContentLength < 0 && r.Body != http.NoBody && r.Body != nil) {
		if limit == 0 {
			return nil, &errBody{wire.KindTooLarge, "this request takes no body"}
		}
		return nil, &errBody{wire.KindTooLarge, fmt.Sprintf("the request body is larger than %d bytes", limit)}
	}
	if limit <= s.cfg.MaxBody {
		return func() {}, nil // small bodies are not budgeted
	}
	if r.ContentLength >= 0 {
		if !s.bodies.TryAcquire(r.ContentLength) {
			return nil, errBusy
		}
		return func() { s.bodies.Release(r.ContentLength) }, nil
	}
	b := &budgetedBody{ReadCloser: r.Body, sem: s.bodies}
	r.Body = b
	return b.release, nil
}

// errBusy refuses a large body while others take the budget.
var errBusy = &errBody{wire.KindUnavailable, "the API is reading as much of other large requests as it takes at once: retry in a moment"}

// budgetedBody takes budget for each chunk of a chunked body it reads.
type budgetedBody struct {
	io.ReadCloser
	sem   *semaphore.Weighted
	taken int64
}

func (b *budgetedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		if !b.sem.TryAcquire(int64(n)) {
			return 0, errBusy
		}
		b.taken += int64(n)
	}
	return n, err
}

func (b *budgetedBody) release() { b.sem.Release(b.taken) }
