package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/slum-fleet/slum"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
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
	if err := jsonType(r); err != nil {
		return err
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

// jsonType refuses a body that is not sent as JSON.
func jsonType(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &errBody{wire.KindUnsupported, "the request body must be JSON, sent with Content-Type: application/json"}
	}
	return nil
}

func bodyError(err error, limit int64) error {
	var eb *errBody
	if errors.As(err, &eb) {
		return eb
	}
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
	switch kind {
	case wire.KindInternal:
		s.log.Error("API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	case wire.KindUnavailable:
		s.log.Warn("API request refused: the fleet database cannot be used", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, kind.Status(), wire.Error{Error: wire.ErrorBody{Kind: kind, Message: err.Error()}})
}

// bodyLimit is how large a request's body may be: what its operation
// carries, and what the caller's role has any business sending.
func (s *Server) bodyLimit(kind wire.Body, role slum.APIRole) int64 {
	switch {
	case kind == wire.ReportBody:
		return s.cfg.MaxReportBody
	case kind == wire.NoBody || role == slum.RoleRouter:
		return 0
	case kind == wire.FileBody && role == slum.RoleAdmin:
		return s.cfg.MaxFileBody
	case kind == wire.FileBody:
		return s.cfg.MaxReadFileBody
	}
	return s.cfg.MaxBody
}

// admitBody checks a request's body before a byte of it is read: one
// declared larger than limit is refused at once (413), as is any body of
// a request that takes none.
func admitBody(r *http.Request, limit int64) error {
	switch {
	case limit == 0 && (r.ContentLength > 0 || r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody):
		return &errBody{wire.KindTooLarge, "this request takes no body"}
	case r.ContentLength > limit:
		return &errBody{wire.KindTooLarge, fmt.Sprintf("the request body is larger than %d bytes", limit)}
	}
	return nil
}

// largeBody is a body over MaxBody, read whole within the API's budget
// for large bodies: it takes twice its size of the budget (the bytes, and
// what decoding makes of them), all of a limit's worth when it comes
// chunked, and is refused with 503 while other large bodies hold the
// budget, so no number of large requests takes more memory than that.
type largeBody struct {
	data    []byte
	release func()
}

// readLarge reads a large body, refusing it as readLarge's doc says.
func (s *Server) readLarge(w http.ResponseWriter, r *http.Request, limit int64) (*largeBody, error) {
	if err := jsonType(r); err != nil {
		return nil, err
	}
	want := 2 * limit
	if r.ContentLength >= 0 {
		want = 2 * r.ContentLength
	}
	if !s.bodies.TryAcquire(want) {
		return nil, errBusy
	}
	release := func() { s.bodies.Release(want); s.returnMemory(want) }
	data, err := readAtMost(http.MaxBytesReader(w, r.Body, limit), r.ContentLength)
	if err != nil {
		release()
		return nil, bodyError(err, limit)
	}
	return &largeBody{data: data, release: release}, nil
}

// readAtMost reads all of a body of n bytes (-1: unknown) into one buffer
// of its size: no growing buffer doubles what it holds.
func readAtMost(body io.Reader, n int64) ([]byte, error) {
	if n >= 0 {
		data := make([]byte, n)
		if _, err := io.ReadFull(body, data); err != nil {
			return nil, err
		}
		if _, err := body.Read(make([]byte, 1)); err != io.EOF {
			return nil, &errBody{wire.KindInvalid, "the request body is longer than its Content-Length"}
		}
		return data, nil
	}
	var chunks [][]byte
	total := 0
	for {
		chunk := make([]byte, 256<<10)
		k, err := io.ReadFull(body, chunk)
		chunks, total = append(chunks, chunk[:k]), total+k
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return bytes.Join(chunks, nil)[:total:total], nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// decodeLarge decodes a large body into v, as decode does a small one,
// without a copy of the bytes on the way.
func decodeLarge(b *largeBody, v any) error {
	err := jsonv2.Unmarshal(b.data, v, jsonv2.RejectUnknownMembers(true))
	var sem *jsonv2.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case err == nil:
		return nil
	case len(bytes.TrimSpace(b.data)) == 0:
		return &errBody{wire.KindInvalid, "the request body is empty: send a JSON object"}
	case errors.As(err, &sem) && errors.Is(sem.Err, jsonv2.ErrUnknownName):
		return &errBody{wire.KindInvalid, fmt.Sprintf("request body: unknown field %q (see the API's documentation)", sem.JSONPointer.LastToken())}
	case errors.As(err, &syn):
		return &errBody{wire.KindInvalid, "the request body is not valid JSON: " + syn.Err.Error()}
	}
	return &errBody{wire.KindInvalid, "request body: " + strings.TrimPrefix(err.Error(), "json: ")}
}

// returnMemory gives the memory of a large body back to the system once
// its request is done, at most ten times a second: large bodies are rare
// (an apply of a large fleet), and what they leave must not stay in the
// process's RSS until the collector gets round to it.
func (s *Server) returnMemory(read int64) {
	if read < 1<<20 {
		return
	}
	now := time.Now().UnixNano()
	if last := s.freed.Load(); now-last < int64(100*time.Millisecond) || !s.freed.CompareAndSwap(last, now) {
		return
	}
	go debug.FreeOSMemory()
}

// errBusy refuses a large body while others take the budget.
var errBusy = &errBody{wire.KindUnavailable, "the API is reading as much of other large requests as it takes at once: retry in a moment"}
