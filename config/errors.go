package config

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// FieldError is one problem with one key of the configuration. Its message
// is "key.path: reason", e.g. `routes[2].pool: unknown pool "ordrs"`. Load
// and Validate return several of them joined with errors.Join; use
// errors.As or Unwrap() []error to get at each.
type FieldError struct {
	// Path is the key path in the file's terms: dots between map keys and
	// fields, [i] for list elements ("pools.orders.backends[1].addr").
	Path string
	// Env is the SLUICE_* variable that set the value, when one did. The
	// message then names the variable instead of the key
	// (`SLUICE_SERVER_READ_TIMEOUT: invalid duration "abc"`), because the
	// file holds no such value and the operator would look there in vain.
	Env string
	// Err is the reason.
	Err error
}

func (e *FieldError) Error() string {
	if e.Env == "" {
		return e.Path + ": " + e.Err.Error()
	}
	label := e.Env
	if i := strings.IndexByte(e.Path, '['); i >= 0 {
		label += e.Path[i:] // an element of a comma-separated list
	}
	return label + ": " + e.Err.Error()
}

func (e *FieldError) Unwrap() error { return e.Err }

// problems collects FieldErrors in the order they are found.
type problems []error

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, &FieldError{Path: path, Err: fmt.Errorf(format, args...)})
}

func (p *problems) addErr(path string, err error) {
	*p = append(*p, &FieldError{Path: path, Err: err})
}

func (p problems) join() error { return errors.Join(p...) }

// Problems returns the members of a tree of joined errors, in order: each
// problem of a Load or Validate error on its own. A wrapper around a joined
// list ("routes: " + the list) is looked through, since its members name
// themselves; any other error is a member as it is.
func Problems(err error) []error {
	switch e := err.(type) {
	case nil:
		return nil
	case interface{ Unwrap() []error }:
		var out []error
		for _, m := range e.Unwrap() {
			out = append(out, Problems(m)...)
		}
		return out
	case interface{ Unwrap() error }:
		if inner, ok := e.Unwrap().(interface{ Unwrap() []error }); ok {
			return Problems(inner.(error))
		}
	}
	return []error{err}
}

// sortByPath orders FieldErrors by path, comparing runs of digits as
// numbers so routes[2] comes before routes[10]. The sort is stable, so
// several problems with one key keep the order they were found in.
func sortByPath(errs []error) {
	path := func(e error) string {
		var fe *FieldError
		if errors.As(e, &fe) {
			return fe.Path
		}
		return ""
	}
	sort.SliceStable(errs, func(i, j int) bool { return naturalLess(path(errs[i]), path(errs[j])) })
}

// naturalLess compares a and b as strings, except that runs of digits
// compare by value.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, errA := strconv.ParseUint(a[:da], 10, 64)
			nb, errB := strconv.ParseUint(b[:db], 10, 64)
			if errA == nil && errB == nil && na != nb {
				return na < nb
			}
			if a[:da] != b[:db] {
				return a[:da] < b[:db]
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digitRun(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}
