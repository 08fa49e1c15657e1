package router

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// tunnel completes a protocol switch (WebSocket and other Upgrades): the
// upstream's 101 goes to the client, then bytes flow both ways until both
// sides are done, or CloseTunnels.
func (p *Proxy) tunnel(ex *exchange, resp *http.Response, uc *upstreamConn) {
	ex.unwatch() // the tunnel outlives the request's context
	if ex.upgrade == "" {
		uc.close()
		p.fail(ex, &upstreamError{kind: errKindProtocol, err: errors.New("101 Switching Protocols to a request that asked for no upgrade")})
		return
	}
	cconn, cbuf, err := http.NewResponseController(ex.w).Hijack()
	if err != nil {
		uc.close()
		ex.err = fmt.Errorf("upgrade: %w", err)
		ex.plain(http.StatusBadGateway, "502 bad gateway: the upgrade cannot be carried on this connection\n")
		return
	}
	ex.status = http.StatusSwitchingProtocols
	defer cconn.Close()
	defer uc.close()
	stop := context.AfterFunc(p.tunnels, func() { cconn.Close(); uc.close() })
	defer stop()
	if cconn.SetDeadline(time.Time{}) != nil || uc.conn.SetDeadline(time.Time{}) != nil {
		return
	}
	cbuf.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	for k, vv := range resp.Header {
		switch k {
		case "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Content-Length", "Te", "Trailer":
			continue
		}
		for _, v := range vv {
			cbuf.WriteString(k)
			cbuf.WriteString(": ")
			cbuf.WriteString(v)
			cbuf.WriteString("\r\n")
		}
	}
	cbuf.WriteString("\r\n")
	if err := cbuf.Flush(); err != nil {
		ex.err = errors.Join(errClientWrite, err)
		return
	}

	// Bytes either side sent early sit in a read buffer; pass them on
	// first, then copy between the raw connections (splice on Linux).
	if err := writeBuffered(uc.conn, cbuf.Reader); err != nil {
		ex.err = err
		return
	}
	if err := writeBuffered(cconn, uc.br); err != nil {
		ex.err = errors.Join(errClientWrite, err)
		return
	}
	up := make(chan int64, 1)
	go func() { up <- pipe(uc.conn, cconn) }()
	ex.bytes = pipe(cconn, uc.conn)
	<-up
}

func writeBuffered(dst io.Writer, br *bufio.Reader) error {
	n := br.Buffered()
	if n == 0 {
		return nil
	}
	b, _ := br.Peek(n)
	_, err := dst.Write(b)
	return err
}

// pipe copies src to dst; at src's end it half-closes dst so the peer
// sees the end too, and on an error it closes dst, which ends the other
// direction's copy as well.
func pipe(dst, src net.Conn) int64 {
	n, err := io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok && err == nil {
		cw.CloseWrite()
		return n
	}
	dst.Close()
	return n
}
