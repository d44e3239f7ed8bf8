// Package httpsafe decides whether a client request is safe to route and
// forward, normalises what routing reads (authority and path), and strips
// hop-by-hop headers in both directions. The client and the backend are both
// untrusted. It imports fasthttp and the standard library only, holds no
// state, and allocates nothing on an ordinary request.
//
// # Use in the handler
//
//	if st, why := httpsafe.Check(&ctx.Request, &opts); st != 0 {
//		httpsafe.Reject(ctx, st, why) // JSON body, Connection: close
//		return
//	}
//	host, st := httpsafe.AppendAuthority(hostBuf[:0], &ctx.Request)
//	rawPath, query := httpsafe.SplitRequestURI(ctx.Request.Header.RequestURI())
//	path, st, why := httpsafe.AppendPath(pathBuf[:0], rawPath, &opts)
//	// route on host and path; forward exactly path (plus "?"+query):
//	//   ctx.Request.SetRequestURIBytes(pathAndQuery)
//	httpsafe.StripRequestHopByHop(&ctx.Request.Header)
//	// then set X-Forwarded-*, Via, X-Request-Id, upstream Host
//	// ... HostClient.Do ...
//	httpsafe.StripResponseHopByHop(&ctx.Response.Header)
//
// and fasthttp.Server.ErrorHandler = httpsafe.ErrorHandler.
//
// Read the request-target with RequestHeader.RequestURI(), never
// Request.RequestURI(), URI() or ctx.Path(): fasthttp's URI parse decodes
// every escape (%2F becomes '/', %00 a NUL byte) and normalises on its own
// terms, which is the mismatch between router and backend that lets a rule
// be bypassed. After SetRequestURIBytes do not call req.URI() before the
// request is written: it would re-parse the target and Request.Write would
// then send fasthttp's re-encoding of the path instead of ours.
//
// # Path decisions
//
// The path is normalised once and the backend gets exactly the bytes the
// router matched. For a rule on /admin:
//
//	/%61dmin, /./admin, /x/../admin, //admin, /x/%2e%2e/admin  -> /admin (rule applies)
//	/admin%2F, /admin%5C, /admin\, /admin%00, /admin%zz         -> 400
//	/admin;x (matrix parameter)                                 -> 400 unless AllowMatrixParams
//	/adm<raw UTF-8>n                                            -> 400 (must be percent-encoded)
//	/adm%C3%ADn (encoded non-ASCII)                             -> kept, hex upper-cased
//	/ADMIN                                                      -> a different path
//
// Paths are case-sensitive, as RFC 3986 says. A backend that matches paths
// without regard to case (IIS, some Windows file servers) therefore sees
// /ADMIN as /admin while the gateway does not: rules protecting such a
// backend must be written for every case or the backend must enforce them.
// The query string is forwarded as received; routing never reads it.
//
// # Hop-by-hop headers
//
// Connection, Keep-Alive, Proxy-Connection, Proxy-Authenticate,
// Proxy-Authorization, TE, Trailer, Transfer-Encoding, Upgrade and every
// field a Connection token names are removed, names compared without regard
// to case (fasthttp's Del compares exactly once header-name normalising is
// off). Host and Content-Length survive a Connection token naming them; they
// are routing and framing, and fasthttp re-frames the body on write anyway.
// Fields the gateway adds itself are set after stripping, so a client's
// "Connection: X-Request-Id" removes only the client's copy.
//
// # What fasthttp v1.78.0 does before the handler runs
//
// Measured by TestFasthttpProbe (raw bytes on a loopback socket, server as
// recommended below); "handler" means the request reaches the handler and
// Check must refuse it.
//
//	input                                    fasthttp                      handler sees / who refuses
//	CL then TE: chunked                      accepts, sets conn close      chunked body, ContentLength -1 or 0; Check 400
//	TE: chunked then CL                      accepts, sets conn close      chunked wins, CL dropped; Check 400
//	CL: 3 twice (any case)                   400 (ErrorHandler)            -
//	CL: "3, 3", "+3", "-1", "", overflow     400                           -
//	TE: gzip, chunked / chunked, identity    400                           -
//	TE: identity                             accepts, drops the field      body by CL, or none; Check 400 (raw scan)
//	TE: Chunked (any case)                   chunked                       passes
//	TE twice                                 400                           -
//	TE on HTTP/1.0                           400                           -
//	obs-fold (any field, incl. CL/TE)        joins the lines               joined value; Check 400 (raw scan)
//	"Content Length: 3" (space in name)      ordinary field, body unread   body bytes become the next request; Check 400
//	"Content-Length : 3"                     400                           -
//	bare LF line ending (block ends CRLF)    accepts                       Check 400 (raw scan)
//	bare LF ending the request line          accepts                       not visible (RawHeaders starts after
//	                                                                       it); harmless: the line is rebuilt
//	blank line of bare LF, no CRLFCRLF       waits for CRLFCRLF (until     gateway's connection read fails with
//	                                         ReadTimeout: 408)             ErrBareLFHead (LookAtHead, a head in
//	                                                                       pieces looked at whole): 400 at once
//	a first byte no method has (TLS, NUL)    waits for a line end          ErrNotHTTP: 400 at once
//	bare CR, NUL, CTL in a value             400                           -
//	Host twice                               400                           -
//	no or empty Host, HTTP/1.1               400                           -
//	no Host, HTTP/1.0                        accepts                       Host ""; Check 400
//	Host: user@a                             accepts                       Host() "user@a", URI().Host() "a"; Check 400
//	Host: a b, Host: %61                     400 (URI parse)               -
//	absolute-form http://B:81/p              accepts                       Host() is the header, URI().Host() "b:81"
//	absolute-form with userinfo              accepts (URI keeps username,  Check 400; fasthttp would turn it into
//	                                         Write adds Authorization)     an Authorization header on forward
//	CONNECT a:443                            accepts                       Check 405
//	OPTIONS *                                accepts                       ctx.Path() "/*"; Check 400
//	GET *                                    400                           -
//	GET / HTTP/2.0 (any HTTP/d.d)            accepts, conn close           Check 505
//	"GET  /", "HTTP/1.1 ", FOO/1.1, G@T      400                           -
//	%2F, %00, \, raw UTF-8 in the path       accepts                       ctx.Path() decodes them; AppendPath 400
//	chunk ext, trailers                      accepts, trailer kept apart   passes; the trailer fields are dropped
//	                                                                       (DropTrailerSection), never merged
//	bad chunk size/data, CL trailer          400                           -
//	CL or a chunk over MaxRequestBodySize    ErrBodyTooLarge               ErrorHandler 413
//	head over ReadBufferSize                 *ErrSmallBuffer (431 default) ErrorHandler 431, or 414 if the
//	                                                                       request line alone filled the buffer
//	request-target over MaxURILength         (fits the buffer)             Check 414
//
// Every error fasthttp reports goes through Server.ErrorHandler, which may
// set any status (ErrorHandler here maps them to 400/408/413/414/431), and
// fasthttp closes the connection after it. fasthttp resets the request
// before calling it, so the only way to tell a long request line from a large
// header section is the buffer snippet in the error text (see ErrorHandler).
//
// # Server settings these guarantees assume
//
//	ErrorHandler:                  httpsafe.ErrorHandler
//	DisableHeaderNamesNormalizing: true or false (tests run both; names are
//	                               compared without regard to case here)
//	NoDefaultServerHeader:         true
//	DisablePreParseMultipartForm:  true   // bodies are forwarded, not parsed
//	ReadBufferSize:                16 << 10 // > Options.MaxURILength, = header limit (431)
//	MaxRequestBodySize:            4 << 20  // 413 above it
//	ReadTimeout, WriteTimeout, IdleTimeout: set (408 on a slow request)
//	SecureErrorLogMessage:         false  // else an oversized request line is 431, not 414
//	                                      // (the cost: fasthttp's error log quotes up to
//	                                      // 400 bytes of the offending request)
//	StreamRequestBody:             false  // body limit answered 413 before the handler runs
//
// Responses from Check or ErrorHandler always close the connection
// (Reject calls ctx.SetConnectionClose; fasthttp does so after ErrorHandler).
package httpsafe
