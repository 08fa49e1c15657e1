//go:build !unix

package http1

import "net"

// Readable cannot peek here: kept-alive connections are trusted and a
// stale one costs a replay (for requests that can be replayed).
func Readable(net.Conn) bool { return false }
