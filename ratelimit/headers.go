package ratelimit

import (
	"strconv"
	"time"
)

// The header helpers write field values of draft-ietf-httpapi-ratelimit-
// headers (-09/-10): each is one member of a Structured Fields list, so a
// route with several limits joins the members with ", " in one field:
//
//	RateLimit-Policy: "per_client";q=200;w=2, "api_key";q=100;w=1
//	RateLimit: "per_client";r=0;t=2, "api_key";r=57;t=1
//	Retry-After: 1
//
// Names are written as they are: Options.Validate allows only characters
// that need no escaping in a Structured Fields string. Every helper appends
// to dst and allocates nothing when dst has room.

// AppendPolicy appends the RateLimit-Policy member of limit name:
// `"name";q=<quota>;w=<window seconds>`. The window is rounded up to whole
// seconds (at least 1), so the advertised rate never exceeds the real one.
func AppendPolicy(dst []byte, name string, p Policy) []byte {
	dst = appendName(dst, name)
	dst = append(dst, ";q="...)
	dst = strconv.AppendInt(dst, int64(p.Quota), 10)
	dst = append(dst, ";w="...)
	return strconv.AppendInt(dst, max(ceilSeconds(p.Window), 1), 10)
}

// AppendRateLimit appends the RateLimit member of limit name for d:
// `"name";r=<remaining>;t=<seconds until the allowance is full again>`.
func AppendRateLimit(dst []byte, name string, d Decision) []byte {
	dst = appendName(dst, name)
	dst = append(dst, ";r="...)
	dst = strconv.AppendInt(dst, int64(max(d.Remaining, 0)), 10)
	dst = append(dst, ";t="...)
	return strconv.AppendInt(dst, ceilSeconds(d.ResetAfter), 10)
}

// AppendRetryAfter appends the Retry-After value for a refused d: the
// delay in whole seconds, rounded up, at least 1.
func AppendRetryAfter(dst []byte, d Decision) []byte {
	return strconv.AppendInt(dst, max(ceilSeconds(d.RetryAfter), 1), 10)
}

func appendName(dst []byte, name string) []byte {
	dst = append(dst, '"')
	dst = append(dst, name...)
	return append(dst, '"')
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := d / time.Second
	if d%time.Second != 0 {
		s++
	}
	return int64(s)
}
