package route

import "strings"

// The methods policy. A rule's method is compared byte for byte with the
// request's, so a method that no client sends makes a route that silently
// never matches. What can never match is refused; what may be a typo but may
// also be a real extension method is accepted with a warning:
//
//   - not an RFC 9110 token ("GE T", ""): refused, no request carries it;
//   - CONNECT: refused, the gateway answers it 405 before routing (it is not
//     a forward proxy);
//   - any lower-case letter ("get", "Post"): refused. Methods are
//     case-sensitive and every registered method is upper case, so "get"
//     is a mistake for GET far more often than an extension method;
//   - an upper-case token that is not registered ("GETT", "PURGE"):
//     accepted with a warning, because extension methods are legitimate
//     (caches take PURGE) and refusing them would leave no way to route
//     them;
//   - a repeated method: accepted, listed once.

// registeredMethod reports whether m is in the IANA HTTP Method Registry
// (RFC 9110, PATCH from RFC 5789, WebDAV and its extensions, CalDAV, ...),
// leaving out CONNECT, which is refused, and PRI, which only starts an
// HTTP/2 connection.
func registeredMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH",
		"ACL", "BASELINE-CONTROL", "BIND", "CHECKIN", "CHECKOUT", "COPY", "LABEL",
		"LINK", "LOCK", "MERGE", "MKACTIVITY", "MKCALENDAR", "MKCOL",
		"MKREDIRECTREF", "MKWORKSPACE", "MOVE", "ORDERPATCH", "PROPFIND",
		"PROPPATCH", "REBIND", "REPORT", "SEARCH", "UNBIND", "UNCHECKOUT",
		"UNLINK", "UNLOCK", "UPDATE", "UPDATEREDIRECTREF", "VERSION-CONTROL":
		return true
	}
	return false
}

// checkMethod applies the methods policy to m, found at key, and reports
// whether the rule may list it.
func checkMethod(p *ruleProblems, key, m string) bool {
	switch {
	case !isToken(m):
		p.fail(key, "%q is not a valid method token", m)
		return false
	case m == "CONNECT":
		p.fail(key, "CONNECT is not supported: the gateway is not a forward proxy")
		return false
	case strings.ToUpper(m) != m:
		p.fail(key, "%q: methods are case-sensitive and standard ones are upper case; write %q", m, strings.ToUpper(m))
		return false
	case !registeredMethod(m):
		p.warn(key, "%q is not a registered HTTP method; the route matches only requests whose method is exactly %q", m, m)
	}
	return true
}
