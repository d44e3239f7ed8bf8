package balancer

import (
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// testOptions are defaulted options with test-friendly (generous) timeouts.
func testOptions(addrs ...string) Options {
	o := Options{Timeout: 5 * time.Second, ConnectTimeout: 2 * time.Second}
	for _, a := range addrs {
		o.Backends = append(o.Backends, BackendOptions{Addr: a})
	}
	return o.WithDefaults()
}

// get sends GET path to b and returns the body, failing the test on error.
func get(t *testing.T, b *Backend, path string) string {
	t.Helper()
	body, err := tryGet(b, path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return body
}

func tryGet(b *Backend, path string) (string, error) { return tryDo(b, "GET", path) }

// tryDo sends method path to b (host "backend", no body, 5 s to answer)
// and returns the response body.
func tryDo(b *Backend, method, path string) (string, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	req.Header.SetHost("backend")
	if err := b.Do(req, resp, time.Now().Add(5*time.Second)); err != nil {
		return "", err
	}
	return string(resp.Body()), nil
}

// newGet is a pooled GET path request to host "backend" and a pooled
// response, both released when the test ends.
func newGet(t *testing.T, path string) (*fasthttp.Request, *fasthttp.Response) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	t.Cleanup(func() {
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	})
	req.SetRequestURI(path)
	req.Header.SetHost("backend")
	return req, resp
}
