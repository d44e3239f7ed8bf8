package origin

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// The order documents are built by appending to a reused buffer rather than
// with encoding/json: the GET /orders/{id} path is the backend of benchmarks
// against nginx and HAProxy, and must not allocate per request.
//
// An order is a pure function of its id, so every origin of a pool returns
// the same body for the same id, and a cached copy is always "right".

// orderEpoch is the created_at of order 0, in Unix seconds
// (2025-01-01T00:00:00Z); order id is created id minutes later.
const orderEpoch = 1735689600

// orderSpan keeps created_at within ten years of the epoch.
const orderSpan = 10 * 365 * 24 * 60

// padding is appended in chunks to pad an order to PayloadBytes.
const padding = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

// appendOrder appends the JSON order with the given id to dst. status
// overrides the id-derived status when not empty ("created" for POST). The
// unpadded order is at most about 270 bytes for any id up to 2^53; when that
// is shorter than size, a "padding" field makes the document exactly size
// bytes. Prices and the total are in cents.
func appendOrder(dst []byte, id int64, status string, size int) []byte {
	start := len(dst)
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, id, 10)
	dst = append(dst, `,"customer":"cus_`...)
	dst = strconv.AppendInt(dst, id%10007, 10)
	dst = append(dst, `","items":[`...)
	items := 1 + id%3
	var total int64
	for i := int64(1); i <= items; i++ {
		qty := 1 + (id+i)%4
		price := 199 + (id%9800*7919+i*104729)%9800 // id reduced first: no overflow
		total += qty * price
		if i > 1 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"sku":"SKU-`...)
		dst = strconv.AppendInt(dst, id%100000, 10)
		dst = append(dst, '-')
		dst = strconv.AppendInt(dst, i, 10)
		dst = append(dst, `","qty":`...)
		dst = strconv.AppendInt(dst, qty, 10)
		dst = append(dst, `,"price":`...)
		dst = strconv.AppendInt(dst, price, 10)
		dst = append(dst, '}')
	}
	dst = append(dst, `],"total":`...)
	dst = strconv.AppendInt(dst, total, 10)
	dst = append(dst, `,"currency":"EUR","status":"`...)
	if status == "" {
		status = orderStatus(id)
	}
	dst = append(dst, status...)
	dst = append(dst, `","created_at":"`...)
	created := time.Unix(orderEpoch+(id%orderSpan)*60, 0).UTC()
	dst = created.AppendFormat(dst, time.RFC3339)
	dst = append(dst, '"')
	const padField = `,"padding":""}`
	if pad := size - (len(dst) - start) - len(padField); pad > 0 {
		dst = append(dst, padField[:len(padField)-2]...)
		for pad > 0 {
			n := min(pad, len(padding))
			dst = append(dst, padding[:n]...)
			pad -= n
		}
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// orderStatus is the status of order id, cycling through a lifecycle.
func orderStatus(id int64) string {
	switch id % 5 {
	case 0:
		return "pending"
	case 1:
		return "paid"
	case 2:
		return "packed"
	case 3:
		return "shipped"
	}
	return "delivered"
}

// appendError appends {"error":code,"message":msg} to dst.
func appendError(dst []byte, code, msg string) []byte {
	dst = append(dst, `{"error":`...)
	dst = appendJSONString(dst, code)
	dst = append(dst, `,"message":`...)
	dst = appendJSONString(dst, msg)
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string. Bytes that are not valid
// UTF-8 become U+FFFD, as encoding/json does, so the result always parses.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return append(dst, '"')
}
