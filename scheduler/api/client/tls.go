package client

import (
	"crypto/tls"
	"net/http"
	"strings"
)

// SetTLS makes the client speak HTTPS with cfg (pki.Identity.HTTPClient:
// the cluster CA, the name server.ark, and the caller's certificate when
// it has one). Every address is then spoken to over https: an http://
// address (ARK_ADDR's default) is upgraded, so a token never travels in
// clear once TLS is configured.
func (c *Client) SetTLS(cfg *tls.Config) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = cfg
	c.http = &http.Client{Transport: t}
	for i, a := range c.addrs {
		if rest, ok := strings.CutPrefix(a, "http://"); ok {
			c.addrs[i] = "https://" + rest
		}
	}
}
