package wire

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/slum-fleet/slum"
)

// Access is what an operation needs of a token's role.
type Access int

const (
	AccessRouter Access = iota // the route table and the watch: every role
	AccessRead                 // reading anything: read and admin
	AccessAdmin                // changing anything: admin
)

func (a Access) String() string {
	return [...]string{"a router, read or admin", "a read or admin", "an admin"}[a]
}

// Allows reports whether role may use an operation that needs a.
func (a Access) Allows(role slum.APIRole) bool {
	switch role {
	case slum.RoleAdmin:
		return true
	case slum.RoleRead:
		return a <= AccessRead
	case slum.RoleRouter:
		return a == AccessRouter
	}
	return false
}

// Body says how large a request's body may be.
type Body int

const (
	NoBody     Body = iota // the request has none
	SmallBody              // a JSON object of a few fields
	FileBody               // carries a fleet file
	ReportBody             // a router's traffic report: any role that may send it
)

// Op is one operation of slum.Fleet as the API carries it, declared once:
// its route, the role it needs, the request (Req: its fields tagged
// `path:"name"` go in the path, `query:"name"` in the query, the rest in
// a JSON body) and what it calls on the Fleet behind the API. The API
// serves it (package api) and the client sends it (api/client) from this
// one declaration.
type Op[Req, Resp any] struct {
	Method string
	Path   string // under Prefix, with {name} for path fields
	Access Access
	Body   Body
	// Created answers 201 rather than 200.
	Created bool
	Call    func(ctx context.Context, f slum.Fleet, req Req) (Resp, error)
}

// Route is an Op as the API serves it, whatever its types.
type Route interface {
	Pattern() string // "METHOD /v1/path/{name}"
	Needs() Access
	BodyKind() Body
	// Serve decodes the request (with readBody for its JSON body), calls
	// the operation on f and returns the status and the value to answer.
	Serve(ctx context.Context, f slum.Fleet, r *http.Request, readBody func(v any) error) (int, any, error)
}

var _ Route = Op[struct{}, struct{}]{}

// Pattern is the route's pattern for an http.ServeMux.
func (op Op[Req, Resp]) Pattern() string { return op.Method + " " + Prefix + op.Path }

// Needs is the access the operation needs.
func (op Op[Req, Resp]) Needs() Access { return op.Access }

// BodyKind is how large the request's body may be.
func (op Op[Req, Resp]) BodyKind() Body { return op.Body }

// Serve decodes the request and calls the operation.
func (op Op[Req, Resp]) Serve(ctx context.Context, f slum.Fleet, r *http.Request, readBody func(v any) error) (int, any, error) {
	var req Req
	if op.Body != NoBody {
		if err := readBody(&req); err != nil {
			return 0, nil, err
		}
	}
	if err := bindFrom(&req, r); err != nil {
		return 0, nil, err
	}
	resp, err := op.Call(ctx, f, req)
	if err != nil {
		return 0, resp, err
	}
	if op.Created {
		return http.StatusCreated, resp, nil
	}
	return http.StatusOK, resp, nil
}

// Target is where the client sends req: the path (escaped) and query; the
// body is req itself, when the operation has one.
func (op Op[Req, Resp]) Target(req Req) (path string, query url.Values) {
	path, query = op.Path, url.Values{}
	eachBound(reflect.ValueOf(&req).Elem(), func(b bound) {
		text := formatValue(b.value)
		switch b.where {
		case "path":
			path = strings.Replace(path, "{"+b.name+"}", url.PathEscape(PathSegment(text)), 1)
		case "query":
			if !b.value.IsZero() {
				query.Set(b.name, text)
			}
		}
	})
	return Prefix + path, query
}

// bound is one field of a request that goes in the URL.
type bound struct {
	where string // "path" or "query"
	name  string // in the URL
	field string // what errors call it: its field tag, or its name
	value reflect.Value
}

// eachBound calls fn for every field of the struct v tagged path or query.
func eachBound(v reflect.Value, fn func(b bound)) {
	if v.Kind() != reflect.Struct {
		return
	}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		for _, where := range []string{"path", "query"} {
			if name, ok := sf.Tag.Lookup(where); ok {
				field := name
				if f, ok := sf.Tag.Lookup("field"); ok {
					field = f
				}
				fn(bound{where, name, field, v.Field(i)})
			}
		}
	}
}

// bindFrom fills req's path and query fields from the request.
func bindFrom(req any, r *http.Request) error {
	var err error
	eachBound(reflect.ValueOf(req).Elem(), func(b bound) {
		if err != nil {
			return
		}
		var text string
		switch b.where {
		case "path":
			text = FromPathSegment(r.PathValue(b.name))
		case "query":
			if !r.URL.Query().Has(b.name) {
				return
			}
			text = r.URL.Query().Get(b.name)
		}
		err = parseValue(b, text)
	})
	return err
}

func formatValue(v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Int64, reflect.Int:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	}
	panic(fmt.Sprintf("wire: a %s cannot go in a URL", v.Type()))
}

// parseValue sets a bound field from its text. A number in the path is
// an id (positive); one in the query a count or position (0 or more).
func parseValue(b bound, text string) error {
	v := b.value
	switch v.Kind() {
	case reflect.String:
		v.SetString(text)
	case reflect.Int64, reflect.Int:
		n, err := strconv.ParseInt(text, 10, 64)
		switch {
		case b.where == "path" && (err != nil || n <= 0):
			return &slum.FieldError{Field: b.field, Value: text, Reason: "must be a positive whole number"}
		case err != nil || n < 0:
			return &slum.FieldError{Field: b.field, Value: text, Reason: "must be a whole number, 0 or more"}
		}
		v.SetInt(n)
	case reflect.Bool:
		ok, err := strconv.ParseBool(text)
		if err != nil {
			return &slum.FieldError{Field: b.field, Value: text, Reason: "must be true or false"}
		}
		v.SetBool(ok)
	default:
		panic(fmt.Sprintf("wire: a %s cannot come from a URL", v.Type()))
	}
	return nil
}

type callerKey struct{}

// WithCaller records who makes a request, for operations that keep a
// record of it (an approval).
func WithCaller(ctx context.Context, who string) context.Context {
	return context.WithValue(ctx, callerKey{}, who)
}

// callerOf is who the API says makes the request; "" on the client side.
func callerOf(ctx context.Context) string {
	who, _ := ctx.Value(callerKey{}).(string)
	return who
}
