//go:build !unix

package router

import "net"

// readable cannot peek here: kept-alive connections are trusted and a
// stale one costs a replay (for requests that can be replayed).
func readable(net.Conn) bool { return false }
