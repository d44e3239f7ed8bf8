package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// envPrefix starts every environment override: SLUICE_SERVER_READ_TIMEOUT
// overrides server.read_timeout.
const envPrefix = "SLUICE"

// keyDelim separates key segments inside viper. Viper's default "." would
// split a pool or header name that contains a dot ("orders.v2") into nested
// keys; "::" appears in no name a user would pick.
const keyDelim = "::"

// Load reads the YAML file at path, applies SLUICE_* environment overrides,
// decodes strictly (an unknown key is an error), fills defaults and
// validates what this package owns (see Validate). On success the Config is
// complete, and Warnings lists what Load accepted but doubts. Route rules
// are checked where they are compiled: call gateway.Check to know all that
// `sluice run` would refuse. Errors name the file for problems reading or
// parsing it, the SLUICE_* variable for a bad value from the environment,
// and the key path for everything else (see FieldError); all problems found
// are returned at once.
func Load(path string) (*Config, error) {
	// The file is read once: the case check below and viper see the same
	// bytes, even if the file is replaced meanwhile.
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err // already "open <path>: <reason>"
	}
	var p problems
	doc, err := oneDocument(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	foldedKeys(&p, doc)

	v := viper.NewWithOptions(viper.KeyDelimiter(keyDelim))
	v.SetConfigType("yaml")
	// An explicitly empty variable is an override too: SLUICE_ADMIN_LISTEN=""
	// is how a container turns the admin listener off.
	v.AllowEmptyEnv(true)
	for _, key := range envKeys(reflect.TypeFor[Config](), "") {
		if err := v.BindEnv(key, envName(key)); err != nil {
			return nil, fmt.Errorf("config: bind %s: %w", envName(key), err)
		}
	}
	if err := v.ReadConfig(bytes.NewReader(raw)); err != nil {
		// Viper wraps parse errors as "While parsing config: yaml: line 3:
		// ..."; the YAML error alone, after the file name, reads better.
		var pe viper.ConfigParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: %w", path, pe.Unwrap())
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}

	cfg := Default()
	whole, err := decode(v.AllSettings(), &cfg)
	p = append(p, Problems(err)...)
	if len(p) == 0 {
		cfg.complete()
		if err := cfg.Validate(); err != nil {
			return nil, nameVariables(err)
		}
		cfg.Warnings = append(cfg.doubts(), unknownVariables(os.Environ())...)
		return &cfg, nil
	}
	// So that one run lists every problem: what could not be read, and what
	// is wrong with the rest, all in the order of their key paths.
	if whole {
		cfg.complete()
		p = append(p, besides(Problems(cfg.Validate()), p)...)
	}
	sortByPath(p)
	return nil, nameVariables(p.join())
}

// besides returns the problems of found (Validate's) that are not in the
// scope of a problem of read (values that failed to decode). A value that
// failed stands at its default, so what Validate says of it, or of a rule
// that compares it with a neighbour (shutdown_delay with drain_timeout, a
// health check's timeout with its interval, admin.listen with listen), is
// not about what the file says. A failed value's scope is the record that
// holds it ("server", "pools.orders.health_check"), or its whole route
// ("routes[2]": strip_prefix is checked against match); a top-level value
// that failed (listen, pools as a whole) scopes everything, since the rest
// may refer to it ("unknown pool").
func besides(found, read []error) []error {
	var scopes []string
	for _, e := range read {
		var fe *FieldError
		if !errors.As(e, &fe) {
			continue
		}
		sc := scopeOf(fe.Path)
		if sc == "" {
			return nil
		}
		scopes = append(scopes, sc)
	}
	var out []error
	for _, e := range found {
		var fe *FieldError
		if errors.As(e, &fe) && slices.ContainsFunc(scopes, func(sc string) bool { return under(fe.Path, sc) }) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// scopeOf returns the scope of the key path of a value that failed (see
// besides): "" for a top-level key.
func scopeOf(path string) string {
	if strings.HasPrefix(path, "routes[") {
		if i := strings.IndexByte(path, ']'); i >= 0 {
			return path[:i+1]
		}
	}
	if i := strings.LastIndexAny(path, ".["); i > 0 {
		return path[:i]
	}
	return ""
}

// under reports whether path is scope or a key inside it.
func under(path, scope string) bool {
	return path == scope || strings.HasPrefix(path, scope+".") || strings.HasPrefix(path, scope+"[")
}

// oneDocument parses raw, the YAML file, and returns its document. It
// refuses a file with more than one: only the first is read, so a second
// one, after a "---" line (two files pasted together, or an override
// appended), would be ignored without a word. An empty document after a
// trailing "---" is harmless. An empty file is an empty document.
func oneDocument(raw []byte) (*yaml.Node, error) {
	d := yaml.NewDecoder(bytes.NewReader(raw))
	first := new(yaml.Node)
	for i := 0; ; i++ {
		doc := first
		if i > 0 {
			doc = new(yaml.Node)
		}
		switch err := d.Decode(doc); {
		case errors.Is(err, io.EOF):
			return first, nil
		case err != nil:
			return nil, err
		case i > 0 && !emptyDocument(doc):
			return nil, fmt.Errorf("line %d: a second YAML document; only the first is read, so everything in one document, please (no \"---\" between settings)", doc.Line)
		}
	}
}

// emptyDocument reports whether doc holds nothing but a null or an empty
// mapping ("--- {}").
func emptyDocument(doc *yaml.Node) bool {
	if len(doc.Content) == 0 {
		return true
	}
	n := doc.Content[0]
	return len(doc.Content) == 1 && (n.Kind == yaml.ScalarNode && n.Tag == "!!null" || n.Kind == yaml.MappingNode && len(n.Content) == 0)
}

// foldedKeys reports each mapping key of the YAML document doc that differs
// from an earlier key of the same mapping only in case. Viper folds keys to
// lower case, so one of the two would silently replace the other: pools
// "Orders" and "orders" would become one pool.
func foldedKeys(p *problems, doc *yaml.Node) {
	var walk func(path string, n *yaml.Node)
	walk = func(path string, n *yaml.Node) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(path, c)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(path+"["+strconv.Itoa(i)+"]", c)
			}
		case yaml.MappingNode:
			seen := make(map[string]*yaml.Node, len(n.Content)/2)
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Kind != yaml.ScalarNode {
					continue // the decoder refuses a key that is not text
				}
				folded := strings.ToLower(k.Value)
				if first, ok := seen[folded]; ok && first.Value != k.Value {
					p.add(joinPath(path, folded), "%q (line %d) and %q (line %d) differ only in case; "+
						"names are case-insensitive, so one would replace the other",
						first.Value, first.Line, k.Value, k.Line)
					continue
				}
				seen[folded] = k
				walk(joinPath(path, folded), v)
			}
		}
		// Aliases are not followed: their target is checked where it is
		// defined, and following them could loop.
	}
	walk("", doc)
}

// nameVariables sets Env on each FieldError of err whose value came from a
// SLUICE_* variable, so that its message names the variable, not a key the
// file may not even have. A set variable always wins over the file.
func nameVariables(err error) error {
	byKey := make(map[string]string)
	for name, key := range EnvVars() {
		if _, set := os.LookupEnv(name); set {
			byKey[key] = name
		}
	}
	for _, e := range Problems(err) {
		var fe *FieldError
		if errors.As(e, &fe) {
			key, _, _ := strings.Cut(fe.Path, "[") // an element of a list
			fe.Env = byKey[key]
		}
	}
	return err
}

// unknownVariables returns a warning for each variable of environ (as
// os.Environ gives it) that looks like one of ours but names no setting: a
// misspelt variable would otherwise be ignored without a word. It is a
// warning, not an error like an unknown key in the file, because the
// environment is shared with everything else the process runs.
func unknownVariables(environ []string) []string {
	known := EnvVars()
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		upper := strings.ToUpper(name)
		if !strings.HasPrefix(upper, envPrefix+"_") || known[name] != "" {
			continue
		}
		msg := name + " is set but names no setting; it is ignored"
		switch {
		case strings.HasPrefix(upper, envPrefix+"_POOLS_"), strings.HasPrefix(upper, envPrefix+"_ROUTES_"):
			msg += " (pools and routes come from the file only)"
		default:
			if near := nearest(upper, known); near != "" {
				msg += " (did you mean " + near + "?)"
			}
		}
		out = append(out, msg)
	}
	sort.Strings(out)
	return out
}

// nearest returns the name among known closest to name by edit distance,
// or "" when none is within 3 edits (a typo, not a different name).
func nearest(name string, known map[string]string) string {
	best, bestDist := "", 4
	for k := range known {
		if d := editDistance(name, k); d < bestDist || d == bestDist && k < best {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// complete fills what defaults depend on the file's content: each pool's
// zero options, and a route's path_prefix when it gives no path at all.
func (c *Config) complete() {
	c.completeShared()
	for name, p := range c.Pools {
		c.Pools[name] = p.WithDefaults()
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		// Pool names arrive lower-cased (viper folds keys), so the
		// references to them must be too.
		r.Pool = strings.ToLower(r.Pool)
		if r.Match.PathPrefix == "" && r.Match.Path == "" {
			r.Match.PathPrefix = "/"
		}
	}
}

// envKeys lists the keys that an environment variable can override: every
// leaf of t outside pools and routes (a map or a list of records has no
// stable variable name).
func envKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if name == "-" {
			continue // not a setting (Warnings)
		}
		key := name
		if prefix != "" {
			key = prefix + keyDelim + name
		}
		switch {
		case f.Type.Kind() == reflect.Struct && f.Type.NumField() > 0:
			keys = append(keys, envKeys(f.Type, key)...)
		case f.Type.Kind() == reflect.Map,
			f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() != reflect.String:
		default:
			keys = append(keys, key)
		}
	}
	return keys
}

// envName maps "server::read_timeout" to "SLUICE_SERVER_READ_TIMEOUT".
func envName(key string) string {
	return envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, keyDelim, "_"))
}

// EnvVars lists every environment variable Load reads, with the key each
// overrides, e.g. "SLUICE_SERVER_READ_TIMEOUT" -> "server.read_timeout".
// Lists take a comma-separated value.
func EnvVars() map[string]string {
	keys := envKeys(reflect.TypeFor[Config](), "")
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[envName(k)] = strings.ReplaceAll(k, keyDelim, ".")
	}
	return out
}
