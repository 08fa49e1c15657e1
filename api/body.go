package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/slum-fleet/slum"

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

// queryInt reads a whole-number query parameter; def when it is absent.
func queryInt(r *http.Request, name string, def int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, &slum.FieldError{Field: name, Value: v, Reason: "must be a whole number, 0 or more"}
	}
	return n, nil
}

func queryBool(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &slum.FieldError{Field: name, Value: v, Reason: "must be true or false"}
	}
	return b, nil
}

// pathID is an id from the path (see wire.PathSegment).
func pathID(r *http.Request, name string) string { return wire.FromPathSegment(r.PathValue(name)) }

// pathNumber is a numeric id from the path.
func pathNumber(r *http.Request, name, field string) (int64, error) {
	v := r.PathValue(name)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, &slum.FieldError{Field: field, Value: v, Reason: "must be a positive whole number"}
	}
	return n, nil
}
