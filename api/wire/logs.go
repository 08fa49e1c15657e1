package wire

// A tenant's log lines: GET Prefix/tenants/{id}/logs, with the query of
// logs.Query.Values. Without follow it answers a logs.Result; with
// follow=true a stream of server-sent events, each a logs.Line or a
// logs.Notice as JSON, or the Error that ended the stream.
const (
	LogsPath       = "/tenants/{id}/logs"
	LogEventLine   = "line"
	LogEventNotice = "notice"
	LogEventError  = "error"
)
