// Package config is Sluice's configuration: the YAML schema (Config, which
// assembles the option types of the packages it configures, such as
// balancer.Options for each pool), its defaults, loading through viper,
// validation, and watching the file for changes. It knows nothing about
// requests; the gateway compiles a validated Config into its routing table.
//
// # Precedence
//
// Each value comes from the first of these that sets it:
//
//  1. an environment variable SLUICE_<KEY>, the key path upper-cased with
//     "_" for "." (SLUICE_LISTEN, SLUICE_SERVER_READ_TIMEOUT,
//     SLUICE_ADMIN_LISTEN, SLUICE_ACCESS_LOG_ENABLED; lists are
//     comma-separated: SLUICE_SERVER_TRUSTED_PROXIES="10.0.0.0/8,::1");
//     a variable set to "" counts, which is how SLUICE_ADMIN_LISTEN=""
//     turns the admin listener off;
//  2. the YAML file;
//  3. the defaults documented on each field (Default returns them, and
//     balancer.Options.WithDefaults fills each pool).
//
// Pools and routes come from the file only: a map or a list of records has
// no stable variable name. EnvVars lists every variable. A bad value from a
// variable is reported under the variable's name (the file does not hold
// it); a set SLUICE_ variable that names no setting is not an error, since
// the environment is shared, but Load returns a warning for it in
// Config.Warnings ("did you mean SLUICE_SERVER_READ_TIMEOUT?").
//
// # Strictness
//
// Load decodes strictly. A key the schema does not have is an error, since
// a misspelt key silently falling back to its default is the most common
// configuration bug. Values are not coerced loosely either: a duration needs
// a unit ("10s"; a bare 10 would otherwise mean 10ns), a size is a whole
// number of bytes or one with a unit ("4MiB", "16KB"; K is 1000, Ki is 1024),
// a boolean is a boolean. Units belong to byte sizes only: a field of type
// Size (or a byte count of another package's options, listed in
// foreignSize) takes "4MiB", any other integer refuses it rather than read
// a rate or a burst as four million.
//
// YAML keys are folded to lower case by viper. Header names do not care;
// pool names become case-insensitive, and Load lower-cases each route's
// pool so references still match. Two keys of one mapping that differ only
// in case would silently become one, so Load reads the raw YAML first and
// refuses them, naming both with their lines.
//
// # What is validated here
//
// Validate checks what belongs to the configuration itself: listeners,
// TLS files, timeouts, sizes, log settings, each pool (through
// balancer.Options.Validate, whose FieldErrors carry their key), route
// names, pool references and strip_prefix. What a route matches (host,
// path, methods, headers) is checked in one place only, where the gateway
// compiles it (gateway/internal/route, reached through gateway.Check by
// `sluice validate` and by `sluice run` alike), so that the two commands
// cannot disagree.
//
// # Errors
//
// Reading or parsing problems name the file, and for YAML syntax the line:
//
//	/etc/sluice/sluice.yaml: yaml: line 7: mapping values are not allowed in this context
//
// Everything else is reported all at once, joined with errors.Join, one
// *FieldError per problem, each "key.path: reason", with dots between keys
// and [i] for list elements:
//
//	routes[0].match.path_prefx: unknown key
//	server.read_timeout: invalid duration "10 seconds"
//	pools.orders: "Orders" (line 4) and "orders" (line 9) differ only in case; ...
//	pools.orders.backends[1].addr: missing port in address "127.0.0.1"
//	routes[2].pool: unknown pool "ordrs"
//
// A problem with a value that came from the environment names the variable
// instead (FieldError.Env; Path still holds the key):
//
//	SLUICE_SERVER_READ_TIMEOUT: invalid duration "abc"
//
// Decoding problems are sorted by key path (list indexes by number);
// Validate's follow the schema: top-level keys in order, pools by name,
// routes by index. A file that fails either returns no Config, so a reload
// from a broken file changes nothing.
//
// # Watching
//
// Watch follows the file through the ways it gets replaced in practice
// (in-place writes, editors' rename-over, Kubernetes' symlink swap) and
// calls back once per burst of events whose net effect changed the file's
// content. Only events on the file and the links leading to it count, so a
// busy neighbour (an access log in the same directory) cannot delay a
// reload. It only signals; the caller Loads, and keeps the running config
// if that fails.
package config
