package wire

// A tenant's log lines: GET Prefix/tenants/{id}/logs, with the query of
// logs.Query.Values. Without follow it answers a logs.Result; with
// follow=true a stream of server-sent events, each a logs.Line or a
// logs.Notice as JSON, then "end" when nothing is left to follow (the
// tenant removed) or the Error that ended it. A stream that stops without
// either was cut: the token revoked, the API stopping.
const (
	LogsPath       = "/tenants/{id}/logs"
	LogEventLine   = "line"
	LogEventNotice = "notice"
	LogEventEnd    = "end"
	LogEventError  = "error"
)
