package origin

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/testnet"
)

func TestEndpoints(t *testing.T) {
	o := startServer(t, Options{Name: "orders-a", CacheControl: "max-age=5"})
	tests := []struct {
		name       string
		req        string
		status     int
		bodyHas    string
		header     string // a header the answer must carry
		headerWant string
	}{
		{"an order is read by id", rawGet("/orders/42"), 200, `"id":42,`, "Cache-Control", "max-age=5"},
		{"the largest id, 2^53, is an order", rawGet("/orders/9007199254740992"), 200, `"id":9007199254740992,`, "Content-Type", "application/json"},
		{"an id above 2^53 is not found", rawGet("/orders/9007199254740993"), 404, `"order_not_found"`, "Content-Type", "application/json"},
		{"id 0 is not found", rawGet("/orders/0"), 404, `"order_not_found"`, "", ""},
		{"a non-numeric id is not found", rawGet("/orders/abc"), 404, `"order_not_found"`, "", ""},
		{"a negative id is not found", rawGet("/orders/-1"), 404, `"order_not_found"`, "", ""},
		{"an order cannot be deleted", "DELETE /orders/1 HTTP/1.1\r\nHost: x\r\n\r\n", 405, `"method_not_allowed"`, "Allow", "GET, HEAD"},
		{"an order is created from JSON", rawPost("/orders", `{"sku":"SKU-1","qty":2}`), 201, `"status":"created"`, "Content-Type", "application/json"},
		{"a body that is not JSON is refused", rawPost("/orders", `{"sku":`), 400, `"invalid_json"`, "", ""},
		{"the collection is not listed", rawGet("/orders"), 405, `"method_not_allowed"`, "Allow", "POST"},
		{"the health check says ok", rawGet("/healthz"), 200, "ok", "Content-Type", "text/plain; charset=utf-8"},
		{"echo describes the request", rawGet("/echo/a?b=c"), 200, `"uri":"/echo/a?b=c"`, "Content-Type", "application/json"},
		{"an unknown path is not found", rawGet("/nope"), 404, `"not_found"`, "Content-Type", "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := testnet.Do(t, o.Addr(), tt.req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if !bytes.Contains(body, []byte(tt.bodyHas)) {
				t.Errorf("body %s does not contain %s", body, tt.bodyHas)
			}
			if got := resp.Header.Get("X-Origin"); got != "orders-a" {
				t.Errorf("X-Origin %q, want orders-a", got)
			}
			if tt.header != "" && resp.Header.Get(tt.header) != tt.headerWant {
				t.Errorf("%s %q, want %q", tt.header, resp.Header.Get(tt.header), tt.headerWant)
			}
			if resp.Header.Get("Server") != "" {
				t.Errorf("Server header %q sent, want none", resp.Header.Get("Server"))
			}
			if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && !json.Valid(body) {
				t.Errorf("body is not valid JSON: %s", body)
			}
		})
	}
}

func TestOrderDocument(t *testing.T) {
	t.Run("an order has every field and is padded to the payload size", func(t *testing.T) {
		o := startServer(t, Options{PayloadBytes: 1000})
		resp, body := testnet.Do(t, o.Addr(), rawGet("/orders/7"))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if len(body) != 1000 {
			t.Errorf("body is %d bytes, want 1000", len(body))
		}
		var order struct {
			ID       int64  `json:"id"`
			Customer string `json:"customer"`
			Items    []struct {
				SKU   string `json:"sku"`
				Qty   int64  `json:"qty"`
				Price int64  `json:"price"`
			}
			Total     int64     `json:"total"`
			Status    string    `json:"status"`
			CreatedAt time.Time `json:"created_at"`
		}
		if err := json.Unmarshal(body, &order); err != nil {
			t.Fatalf("decode order: %v\n%s", err, body)
		}
		var sum int64
		for _, it := range order.Items {
			sum += it.Qty * it.Price
		}
		if order.ID != 7 || order.Customer == "" || len(order.Items) == 0 || order.Total != sum ||
			order.Status == "" || order.CreatedAt.IsZero() {
			t.Errorf("incomplete order: %+v", order)
		}
	})
	t.Run("the default payload is about 300 bytes", func(t *testing.T) {
		o := startServer(t, Options{})
		_, body := testnet.Do(t, o.Addr(), rawGet("/orders/123456"))
		if len(body) != defaultPayloadBytes {
			t.Errorf("body is %d bytes, want %d", len(body), defaultPayloadBytes)
		}
	})
	t.Run("every id up to 2^53 fits the default payload exactly", func(t *testing.T) {
		for _, id := range []int64{1, 2, 5, 999998, 1 << 40, maxID - 1, maxID} {
			if n := len(appendOrder(nil, id, "", defaultPayloadBytes)); n != defaultPayloadBytes {
				t.Errorf("order %d is %d bytes, want %d", id, n, defaultPayloadBytes)
			}
		}
	})
	t.Run("no Cache-Control is sent unless configured", func(t *testing.T) {
		o := startServer(t, Options{})
		resp, _ := testnet.Do(t, o.Addr(), rawGet("/orders/1"))
		if cc, ok := resp.Header["Cache-Control"]; ok {
			t.Errorf("Cache-Control %q sent", cc)
		}
	})
	t.Run("two origins answer the same order identically", func(t *testing.T) {
		a := startServer(t, Options{Name: "a"})
		b := startServer(t, Options{Name: "b"})
		_, ba := testnet.Do(t, a.Addr(), rawGet("/orders/99"))
		_, bb := testnet.Do(t, b.Addr(), rawGet("/orders/99"))
		if !bytes.Equal(ba, bb) {
			t.Errorf("bodies differ:\n%s\n%s", ba, bb)
		}
	})
	t.Run("created orders get increasing ids and a Location", func(t *testing.T) {
		o := startServer(t, Options{})
		var last int64
		for i := 0; i < 2; i++ {
			resp, body := testnet.Do(t, o.Addr(), rawPost("/orders", `{"qty":1}`))
			var got struct{ ID int64 }
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got.ID <= last {
				t.Errorf("id %d after %d", got.ID, last)
			}
			last = got.ID
			if want := "/orders/" + strconv.FormatInt(got.ID, 10); resp.Header.Get("Location") != want {
				t.Errorf("Location %q, want %q", resp.Header.Get("Location"), want)
			}
		}
	})
	t.Run("HEAD answers the headers of GET without a body", func(t *testing.T) {
		o := startServer(t, Options{})
		c := testnet.Dial(t, o.Addr())
		io.WriteString(c, "HEAD /orders/5 HTTP/1.1\r\nHost: x\r\n\r\n"+rawGet("/healthz"))
		resp, err := http.ReadResponse(c.R, &http.Request{Method: http.MethodHead})
		if err != nil || resp.StatusCode != 200 || resp.ContentLength != defaultPayloadBytes {
			t.Fatalf("HEAD: %v %+v", err, resp)
		}
		// The next response must follow directly: a body after HEAD would break it.
		if resp, body := c.ReadResponse(t, ""); resp.StatusCode != 200 || string(body) != "ok" {
			t.Errorf("after HEAD: %d %q", resp.StatusCode, body)
		}
	})
}
