package gateway

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/cache"
	"github.com/sluice-gw/sluice/config"
)

// purgeTimeout bounds one admin purge, Redis included.
const purgeTimeout = 5 * time.Second

// readAdminToken reads admin.token_file; "" (no file) disables admin
// writes. It runs at New and on each reload, so a token can be rotated
// without a restart.
func readAdminToken(cfg *config.Config) (string, error) {
	if cfg.Admin.TokenFile == "" {
		return "", nil
	}
	tok, err := config.ReadToken(cfg.Admin.TokenFile)
	if err != nil {
		return "", fmt.Errorf("admin.token_file: %w", err)
	}
	return tok, nil
}

// requireToken lets a request through to next only with the configured
// bearer token. Without one configured every write is refused with 403 and
// the reason; a missing or wrong token gets 401.
func (s *Server) requireToken(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		want := ""
		if p := s.adminToken.Load(); p != nil {
			want = *p
		}
		if want == "" {
			writeAdminJSON(w, http.StatusForbidden, map[string]any{
				"error": "admin writes are disabled: no admin.token_file is configured"})
			return
		}
		scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		// The scheme is case-insensitive (RFC 9110 §11.1).
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(want)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice-admin"`)
			writeAdminJSON(w, http.StatusUnauthorized, map[string]any{
				"error": "admin writes need Authorization: Bearer <the token in admin.token_file>"})
			return
		}
		next(w, r)
	}
}

// purge removes cached responses on every instance: ?url=host/path?query
// (one URL, both schemes), ?prefix=host[/path] (every URL under it) or
// ?tag=name (every response whose Surrogate-Key named it). It answers with
// how many entries went from this instance's memory and from Redis; other
// instances apply the purge to their memory as the broadcast reaches them.
func (s *Server) purge(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var kind, target string
	for k, vs := range q {
		switch {
		case k != "url" && k != "prefix" && k != "tag":
			// Most often the rest of a url whose "&" was not encoded:
			// purging the part before it would answer 200 for the wrong URL.
			writeAdminJSON(w, http.StatusBadRequest, map[string]any{
				"error": fmt.Sprintf("unknown parameter %q: give one of url, prefix and tag, with & in its value encoded as %%26", k)})
			return
		case kind != "" || len(vs) != 1 || vs[0] == "":
			writeAdminJSON(w, http.StatusBadRequest, map[string]any{"error": "give exactly one of url, prefix and tag, once, not empty"})
			return
		}
		kind, target = k, vs[0]
	}
	if kind != "tag" {
		// "http://host/path" names the same entries as "host/path": both
		// schemes are purged. A scheme is case-insensitive (RFC 3986 §3.1).
		for _, scheme := range []string{"https://", "http://"} {
			if len(target) >= len(scheme) && strings.EqualFold(target[:len(scheme)], scheme) {
				target = target[len(scheme):]
				break
			}
		}
	}
	if kind == "" {
		writeAdminJSON(w, http.StatusBadRequest, map[string]any{
			"error": "give one of ?url=host/path?query, ?prefix=host[/path] or ?tag=name"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), purgeTimeout)
	defer cancel()
	var n cache.Purged
	var err error
	switch kind {
	case "url":
		n, err = s.cache.PurgeURL(ctx, target)
	case "prefix":
		n, err = s.cache.PurgePrefix(ctx, target)
	default:
		n, err = s.cache.PurgeTag(ctx, target)
	}
	body := map[string]any{kind: target, "purged": map[string]int{"local": n.Local, "redis": n.Redis}}
	if err != nil {
		// This instance's memory is purged; Redis, and so the other
		// instances, may not be: the operator should retry.
		body["error"] = "redis: " + err.Error()
		writeAdminJSON(w, http.StatusBadGateway, body)
		return
	}
	s.log.Info("cache purged", "kind", kind, "target", target, "local", n.Local, "redis", n.Redis)
	writeAdminJSON(w, http.StatusOK, body)
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
