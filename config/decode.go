package config

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/cache"
)

// decode fills target, a pointer to a schema struct (a *Config), from
// settings, a tree of maps, lists and scalars as viper returns it. Keys
// absent from settings leave target's values alone, which is how defaults
// survive. Every unknown key and every value of the wrong type is reported,
// each as a FieldError naming its key path, sorted by path. settings may be
// changed: foreign byte sizes are parsed in place, and values that fail are
// cleared.
//
// When values fail, target still receives every value that decoded: a
// failed value leaves its field as target held it (its default) and its
// list element or map entry at the zero value, so that the caller can
// validate the rest and report everything at once. whole reports whether
// that worked; when it is false, target may lack entries that did decode
// and is not worth validating.
func decode(settings map[string]any, target any) (whole bool, err error) {
	var p problems
	typ := reflect.TypeOf(target).Elem()
	eachStruct("", settings, typ, func(path string, m map[string]any, t reflect.Type) {
		unknownKeys(&p, path, m, t)
		parseForeignSizes(&p, path, m, t)
	})

	failed, err := decodeOnce(settings, target)
	if err != nil {
		return false, err
	}
	whole = true
	for _, e := range failed {
		de, ok := e.(*mapstructure.DecodeError)
		if !ok {
			p = append(p, e)
			whole = false
			continue
		}
		p.addErr(keyPath(de.Name(), typ), de.Unwrap())
		whole = clearValue(settings, de.Name(), typ) && whole
	}
	if len(failed) > 0 && whole {
		// The values that failed are cleared: decoding again fills the
		// map entries and list elements that held them.
		again, err := decodeOnce(settings, target)
		whole = err == nil && len(again) == 0
	}
	sortByPath(p)
	return whole, p.join()
}

// decodeOnce runs the decoder over settings into target and returns what
// failed, one error per value (mapstructure joins them and wraps the join
// in one error, whose message names only the first). err is for a decoder
// that cannot be built.
func decodeOnce(settings map[string]any, target any) (failed []error, err error) {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook: mapstructure.DecodeHookFuncType(decodeHook),
		Result:     target,
		TagName:    "mapstructure",
	})
	if err != nil {
		return nil, fmt.Errorf("config: build decoder: %w", err)
	}
	return decodeErrors(dec.Decode(settings)), nil
}

// decodeErrors returns each *mapstructure.DecodeError of the tree err, in
// order, through joins and single wrappers alike; an error that is neither
// is returned as it is.
func decodeErrors(err error) []error {
	if err == nil {
		return nil
	}
	if de, ok := err.(*mapstructure.DecodeError); ok {
		return []error{de}
	}
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		var out []error
		for _, m := range e.Unwrap() {
			out = append(out, decodeErrors(m)...)
		}
		return out
	case interface{ Unwrap() error }:
		if inner := e.Unwrap(); inner != nil {
			return decodeErrors(inner)
		}
	}
	return []error{err}
}

// decodeHook converts what YAML or the environment gives (every env value
// is a string) into the type of the target field, with messages that say
// what was expected. Being strict here, rather than using mapstructure's
// weak typing, keeps `read_timeout: 10` from silently meaning 10ns.
func decodeHook(_ reflect.Type, to reflect.Type, data any) (any, error) {
	if data == nil {
		return nil, nil
	}
	switch to {
	case reflect.TypeFor[time.Duration]():
		return toDuration(data)
	case reflect.TypeFor[Size]():
		// Only Size takes units: a count, a rate or a burst held in an int
		// must refuse "4MiB" rather than read it as four million.
		return toSize(data)
	case reflect.TypeFor[Ratio]():
		return toRatio(data)
	}
	switch to.Kind() {
	case reflect.Bool:
		return toBool(data)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return toInt(data, to.Bits())
	case reflect.String:
		return toString(data)
	case reflect.Slice:
		if s, ok := data.(string); ok && to.Elem().Kind() == reflect.String {
			return splitList(s), nil
		}
		if _, ok := data.([]any); !ok && reflect.TypeOf(data).Kind() != reflect.Slice {
			return nil, fmt.Errorf("expected a list, got %s", describe(data))
		}
	case reflect.Map, reflect.Struct:
		if _, ok := asMap(data); !ok && reflect.TypeOf(data) != to {
			return nil, fmt.Errorf("expected a mapping, got %s", describe(data))
		}
	}
	return data, nil
}

func toDuration(data any) (any, error) {
	switch v := data.(type) {
	case time.Duration:
		return v, nil
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("invalid duration %q", v)
		}
		return d, nil
	}
	if n, ok := asInt64(data); ok && n == 0 {
		return time.Duration(0), nil
	}
	if isNumber(data) {
		return nil, fmt.Errorf("invalid duration %v: a number needs a unit, e.g. \"%vs\"", data, data)
	}
	return nil, fmt.Errorf("expected a duration such as \"10s\", got %s", describe(data))
}

func toSize(data any) (any, error) {
	switch v := data.(type) {
	case Size:
		return int64(v), nil
	case string:
		s, err := ParseSize(v)
		if err != nil {
			return nil, err
		}
		return int64(s), nil
	}
	if n, ok := asInt64(data); ok {
		return n, nil
	}
	if isNumber(data) {
		return nil, fmt.Errorf("invalid size %v: must be a whole number of bytes", data)
	}
	return nil, fmt.Errorf("expected a size such as \"4MiB\", got %s", describe(data))
}

func toBool(data any) (any, error) {
	switch v := data.(type) {
	case bool:
		return v, nil
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("invalid boolean %q", v)
		}
		return b, nil
	}
	return nil, fmt.Errorf("expected true or false, got %s", describe(data))
}

func toInt(data any, bits int) (any, error) {
	if s, ok := data.(string); ok {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, bits)
		if err != nil {
			return nil, fmt.Errorf("invalid integer %q", s)
		}
		return n, nil
	}
	if n, ok := asInt64(data); ok {
		if bits < 64 && (n < -1<<(bits-1) || n > 1<<(bits-1)-1) {
			return nil, fmt.Errorf("integer %d out of range", n)
		}
		return n, nil
	}
	if isNumber(data) {
		return nil, fmt.Errorf("invalid integer %v", data)
	}
	return nil, fmt.Errorf("expected an integer, got %s", describe(data))
}

func toString(data any) (any, error) {
	switch v := data.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	}
	if isNumber(data) {
		// `listen: 8080` or `X-Version: 2`: YAML saw a number, the user
		// meant text.
		return fmt.Sprint(data), nil
	}
	return nil, fmt.Errorf("expected a string, got %s", describe(data))
}

// splitList reads a comma-separated list, the form a list takes in an
// environment variable: SLUICE_SERVER_TRUSTED_PROXIES="10.0.0.0/8, ::1".
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// asInt64 returns data as an int64 when it is a whole number in range.
func asInt64(data any) (int64, bool) {
	v := reflect.ValueOf(data)
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if v.Uint() > math.MaxInt64 {
			return 0, false
		}
		return int64(v.Uint()), true
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
			return 0, false
		}
		return int64(f), true
	}
	return 0, false
}

func isNumber(data any) bool {
	switch reflect.ValueOf(data).Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// describe names a YAML value for an error message.
func describe(data any) string {
	switch v := data.(type) {
	case string:
		return fmt.Sprintf("the string %q", v)
	case bool:
		return fmt.Sprintf("the boolean %t", v)
	case []any:
		return "a list"
	}
	if _, ok := asMap(data); ok {
		return "a mapping"
	}
	if isNumber(data) {
		return fmt.Sprintf("the number %v", data)
	}
	return fmt.Sprintf("a value of type %T", data)
}

// asMap returns a YAML mapping with its keys as strings.
func asMap(data any) (map[string]any, bool) {
	switch m := data.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, v := range m {
			out[fmt.Sprint(k)] = v
		}
		return out, true
	}
	return nil, false
}

// eachStruct calls visit for every mapping in data that the schema type t
// decodes into a struct, with its key path, following only the keys t knows.
// Values of the wrong shape are skipped: the decoder reports them.
func eachStruct(path string, data any, t reflect.Type, visit func(path string, m map[string]any, t reflect.Type)) {
	switch t.Kind() {
	case reflect.Struct:
		m, ok := data.(map[string]any)
		if !ok {
			if m, ok = asMap(data); !ok {
				return
			}
		}
		visit(path, m, t)
		for _, k := range sortedKeys(m) {
			if f, ok := fieldByKey(t, k); ok {
				eachStruct(joinPath(path, k), m[k], f.Type, visit)
			}
		}
	case reflect.Map:
		m, ok := asMap(data)
		if !ok {
			return
		}
		for _, k := range sortedKeys(m) {
			eachStruct(joinPath(path, k), m[k], t.Elem(), visit)
		}
	case reflect.Slice:
		s, ok := data.([]any)
		if !ok {
			return
		}
		for i, v := range s {
			eachStruct(path+"["+strconv.Itoa(i)+"]", v, t.Elem(), visit)
		}
	}
}

// unknownKeys reports every key of m, a mapping decoded into the struct
// type t, that t has no field for.
func unknownKeys(p *problems, path string, m map[string]any, t reflect.Type) {
	for _, k := range sortedKeys(m) {
		if _, ok := fieldByKey(t, k); !ok {
			p.add(joinPath(path, k), "unknown key")
		}
	}
}

// foreignSize reports whether the field key of the struct type t is a byte
// size held in a plain int64. Option types of other packages cannot use Size
// (they do not import config), so their sizes are listed here.
func foreignSize(t reflect.Type, key string) bool {
	switch t {
	case reflect.TypeFor[balancer.Options]():
		return key == "max_response_body" || key == "buffer_response"
	case reflect.TypeFor[cache.Options]():
		return key == "memory" || key == "max_entry"
	case reflect.TypeFor[cache.RouteOptions]():
		return key == "max_entry"
	}
	return false
}

// parseForeignSizes replaces each foreign size in m ("64MiB") by its number
// of bytes, before the decoder sees it: the decoder's int64 hook takes
// integers only. A value that does not parse is reported here, under its
// key, and removed so the decoder does not report it again.
func parseForeignSizes(p *problems, path string, m map[string]any, t reflect.Type) {
	for k, v := range m {
		if !foreignSize(t, k) {
			continue
		}
		n, err := toSize(v)
		if err != nil {
			p.addErr(joinPath(path, k), err)
			delete(m, k)
			continue
		}
		m[k] = n
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldByKey finds the struct field whose mapstructure tag is key.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if opts == "squash" && f.Type.Kind() == reflect.Struct {
			// An embedded option type whose keys sit at this level
			// (rate_limits.<name>.rate comes from ratelimit.Options).
			if sf, ok := fieldByKey(f.Type, key); ok {
				return sf, true
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name == key && name != "-" { // "-" is not read from the file
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// nameStep is one step of a mapstructure field name: a struct field or a
// map key, or (list) a list index, still as text.
type nameStep struct {
	key  string
	list bool
}

// splitName splits a mapstructure field name into its steps. mapstructure
// writes map keys in brackets ("pools[orders].timeout") just like list
// indexes, so the schema type t is walked alongside to tell them apart. rest
// is what could not be followed (an unknown field, an unclosed bracket);
// it is "" for every name the decoder makes from t.
func splitName(name string, t reflect.Type) (steps []nameStep, rest string) {
	rest = name
	for rest != "" {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Struct:
			rest = strings.TrimPrefix(rest, ".")
			field := rest
			if i := strings.IndexAny(rest, ".["); i >= 0 {
				field = rest[:i]
			}
			rest = rest[len(field):]
			steps = append(steps, nameStep{key: field})
			f, ok := fieldByKey(t, field)
			if !ok {
				return steps, rest
			}
			t = f.Type
		case reflect.Map:
			end := -1
			if strings.HasPrefix(rest, "[") {
				for j := 1; j < len(rest); j++ {
					if rest[j] == ']' && (j+1 == len(rest) || rest[j+1] == '.' || rest[j+1] == '[') {
						end = j
						break
					}
				}
			}
			if end < 0 {
				return steps, rest
			}
			steps = append(steps, nameStep{key: rest[1:end]})
			rest = rest[end+1:]
			t = t.Elem()
		case reflect.Slice, reflect.Array:
			end := strings.IndexByte(rest, ']')
			if !strings.HasPrefix(rest, "[") || end < 0 {
				return steps, rest
			}
			steps = append(steps, nameStep{key: rest[1:end], list: true})
			rest = rest[end+1:]
			t = t.Elem()
		default:
			return steps, rest
		}
	}
	return steps, ""
}

// keyPath rewrites a mapstructure field name into this package's key path
// syntax ("pools[orders].timeout" becomes "pools.orders.timeout",
// "routes[0].name" stays), with t the schema type the name comes from.
func keyPath(name string, t reflect.Type) string {
	steps, rest := splitName(name, t)
	var b strings.Builder
	for _, st := range steps {
		switch {
		case st.list:
			b.WriteString("[" + st.key + "]")
		case b.Len() > 0:
			b.WriteString("." + st.key)
		default:
			b.WriteString(st.key)
		}
	}
	b.WriteString(rest)
	return b.String()
}

// clearValue sets to nil the value of settings that the mapstructure field
// name designates, so that decoding again leaves that field as the target
// held it (its default) and that list element or map entry at its zero
// value, instead of failing on it again. It reports whether it found the
// value. Keys are found regardless of case, as the decoder matches them.
func clearValue(settings map[string]any, name string, t reflect.Type) bool {
	steps, rest := splitName(name, t)
	if rest != "" || len(steps) == 0 {
		return false
	}
	var data any = settings
	for i, st := range steps {
		last := i == len(steps)-1
		switch d := data.(type) {
		case map[string]any:
			k, ok := foldedKey(d, st.key)
			if !ok {
				return false
			}
			if last {
				d[k] = nil
				return true
			}
			data = d[k]
		case []any:
			n, err := strconv.Atoi(st.key)
			if err != nil || n < 0 || n >= len(d) {
				return false
			}
			if last {
				d[n] = nil
				return true
			}
			data = d[n]
		default:
			return false
		}
	}
	return false
}

// foldedKey returns the key of m equal to key, or failing that equal to it
// regardless of case.
func foldedKey(m map[string]any, key string) (string, bool) {
	if _, ok := m[key]; ok {
		return key, true
	}
	for _, k := range sortedKeys(m) {
		if strings.EqualFold(k, key) {
			return k, true
		}
	}
	return "", false
}
