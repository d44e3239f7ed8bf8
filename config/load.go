package config

import (
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"strings"

	"github.com/spf13/viper"
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
// validates. On success the Config is complete and valid. Errors name the
// file for problems reading or parsing it, and the key path for everything
// else (see FieldError); all problems found are returned at once.
func Load(path string) (*Config, error) {
	v := viper.NewWithOptions(viper.KeyDelimiter(keyDelim))
	v.SetConfigFile(path)
	v.SetConfigType("yaml")
	// An explicitly empty variable is an override too: SLUICE_ADMIN_LISTEN=""
	// is how a container turns the admin listener off.
	v.AllowEmptyEnv(true)
	for _, key := range envKeys(reflect.TypeFor[Config](), "") {
		if err := v.BindEnv(key, envName(key)); err != nil {
			return nil, fmt.Errorf("config: bind %s: %w", envName(key), err)
		}
	}
	if err := v.ReadInConfig(); err != nil {
		// Viper wraps parse errors as "While parsing config: yaml: line 3:
		// ..."; the YAML error alone, after the file name, reads better.
		var pe viper.ConfigParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: %w", path, pe.Unwrap())
		}
		var fe *fs.PathError
		if errors.As(err, &fe) {
			return nil, err // already "open <path>: <reason>"
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}

	cfg := Default()
	if err := decode(v.AllSettings(), &cfg); err != nil {
		return nil, err
	}
	cfg.complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// complete fills what defaults depend on the file's content: each pool's
// zero options, and a route's path_prefix when it gives no path at all.
func (c *Config) complete() {
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
