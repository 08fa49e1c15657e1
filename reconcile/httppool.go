package reconcile

import (
	"net/http"
)

// httpClientPool hands every server's client the same transport, so
// connections are reused across passes.
type httpClientPool struct {
	transport *http.Transport
}

func (p *httpClientPool) client() *http.Client { return &http.Client{Transport: p.transport} }
