package httpsafe

// DefaultMaxURILength is the request-target length above which Check answers
// 414 when Options.MaxURILength is zero. 8 KiB is what common origin servers
// accept; it must stay below the server's ReadBufferSize so that fasthttp
// hands such a request to the handler instead of failing it as a too-large
// header section (see ErrorHandler).
const DefaultMaxURILength = 8 << 10

// Options tune the request checks. Set MergeSlashes to true (the gateway's
// configuration default, server.merge_slashes); the other zero values are the
// safe defaults.
type Options struct {
	// MergeSlashes merges empty path segments ("/a//b" becomes "/a/b"), so
	// that a rule on /admin also covers //admin, which many backends treat
	// as /admin. Recommended and the configuration default: true. The zero
	// value false keeps inner empty segments; a leading run of slashes is
	// collapsed to one either way, because an origin-form path starting with
	// "//" is read as an authority by some URL parsers.
	MergeSlashes bool

	// AllowEncodedSlash passes %2F and %5C (encoded '/' and '\') through,
	// upper-cased and still encoded, instead of refusing the request with
	// 400. Default false: a backend that decodes them would see a different
	// path from the one the router matched.
	AllowEncodedSlash bool

	// AllowMatrixParams lets ';' appear in paths. Default false: refused with
	// 400, because servlet containers (Tomcat, Jetty) drop ";params" from a
	// segment before matching, so /admin;x would reach /admin on the backend
	// while the gateway matched it as a different path.
	AllowMatrixParams bool

	// MaxURILength is the longest request-target (path and query, or the
	// whole absolute URI) accepted; longer ones get 414. Zero means
	// DefaultMaxURILength (8 KiB). Keep it below the server's ReadBufferSize.
	MaxURILength int
}

func (o *Options) maxURILength() int {
	if o == nil || o.MaxURILength <= 0 {
		return DefaultMaxURILength
	}
	return o.MaxURILength
}
