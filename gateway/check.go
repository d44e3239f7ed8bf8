package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/gateway/internal/route"
)

// Check is the dry run behind `sluice validate`, as `nginx -t` is nginx's:
// it builds the routing table from cfg exactly as New and Reload do (the
// same buildTable, so the same route validation, in
// gateway/internal/route) and throws it away. What Check accepts, `sluice
// run` and a reload accept too, and the reverse; only what depends on the
// machine at start-up (a busy port, an unwritable access log) can still
// fail New.
//
// cfg is as config.Load returns it (defaulted and validated). Nothing is
// started: no listener, no health check, no connection; the backends the
// dry run built are closed before Check returns.
//
// Each problem is a *config.FieldError naming its key path
// (`routes[2].match.host: "a:80" must not contain a port`), all joined
// with errors.Join. warnings lists what is accepted but doubtful, for the
// caller to print or log: cfg.Warnings, then the route rules' (an
// unregistered method such as "GETT"), then the backend names that do not
// resolve now. Names are looked up with the system's resolver, as `sluice
// run` does at start-up.
func Check(cfg *config.Config) (warnings []string, err error) {
	names := newRuntimeState()
	names.syncNames(net.DefaultResolver, cfg, slog.New(slog.DiscardHandler))
	eff, _, err := names.apply(cfg)
	if err != nil {
		return nil, err
	}
	// No health callback: the checkers the table holds are never started.
	t, err := buildTable(eff, nil, newMetrics(func() *Table { return nil }), nil, limitDeps{})
	if err != nil {
		return nil, withKeyPaths(err)
	}
	t.retire(nil)

	warnings = append(warnings, cfg.Warnings...)
	for _, w := range t.matcher.Warnings() {
		warnings = append(warnings, routeProblem(w).Error())
	}
	warnings = append(warnings, names.unresolved(cfg)...)
	return warnings, nil
}

// withKeyPaths rewrites the route problems in err, which name a rule by
// index ("rule 2: host: ..."), into FieldErrors naming the key in the file
// ("routes[2].match.host: ..."). Other problems are kept as they are.
func withKeyPaths(err error) error {
	var out []error
	for _, e := range config.Problems(err) {
		var re *route.Error
		if errors.As(e, &re) {
			out = append(out, routeProblem(re))
			continue
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// routeProblem names a route problem by its key path in the file.
func routeProblem(e *route.Error) *config.FieldError {
	path := fmt.Sprintf("routes[%d].match", e.Rule)
	if e.Key != "" {
		path += "." + e.Key
	}
	return &config.FieldError{Path: path, Err: e.Err}
}
