package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Scenario is a weighted mix of requests, read from YAML:
//
//	url: http://127.0.0.1:8080        # base for relative paths; -url overrides it
//	keys: keys.txt                    # one key a line, for {key}; relative to this file
//	requests:
//	  - name: read-order
//	    weight: 90                    # share of the mix, default 1
//	    path: /api/orders/{key:zipf:1.1}
//	    headers: {Accept: application/json}
//	  - name: create-order
//	    weight: 10
//	    method: POST
//	    path: /api/orders
//	    headers: {Content-Type: application/json}
//	    body: '{"sku":"{rand:1-500}","qty":1}'
type Scenario struct {
	URL      string            `yaml:"url"`
	Keys     string            `yaml:"keys"`
	Requests []ScenarioRequest `yaml:"requests"`

	// keys holds the lines of the Keys file, loaded by LoadScenario.
	keys [][]byte
}

// ScenarioRequest is one entry of a Scenario.
type ScenarioRequest struct {
	Name    string            `yaml:"name"`
	Weight  int               `yaml:"weight"`
	Method  string            `yaml:"method"`
	Path    string            `yaml:"path"` // relative to the scenario URL, or absolute
	Headers map[string]string `yaml:"headers"`
	Body    string            `yaml:"body"`
}

// LoadScenario reads a scenario file and the keys file it names.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	sc, err := ParseScenario(data)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	if sc.Keys != "" {
		kp := sc.Keys
		if !filepath.IsAbs(kp) {
			kp = filepath.Join(filepath.Dir(path), kp)
		}
		if sc.keys, err = readKeys(kp); err != nil {
			return nil, fmt.Errorf("scenario %s: %w", path, err)
		}
	}
	return sc, nil
}

// ParseScenario decodes a scenario without reading its keys file; use
// SetKeys or LoadScenario for scenarios with {key} placeholders.
func ParseScenario(data []byte) (*Scenario, error) {
	var sc Scenario
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	if len(sc.Requests) == 0 {
		return nil, fmt.Errorf("no requests")
	}
	for i, r := range sc.Requests {
		if r.Weight < 0 {
			return nil, fmt.Errorf("requests[%d] (%s): weight %d is negative", i, r.Name, r.Weight)
		}
	}
	return &sc, nil
}

// SetKeys gives the scenario the keys its {key} placeholders draw from.
func (sc *Scenario) SetKeys(keys []string) {
	sc.keys = sc.keys[:0]
	for _, k := range keys {
		sc.keys = append(sc.keys, []byte(k))
	}
}

func readKeys(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	defer f.Close()
	var keys [][]byte
	s := bufio.NewScanner(f)
	for s.Scan() {
		if line := bytes.TrimSpace(s.Bytes()); len(line) > 0 {
			keys = append(keys, bytes.Clone(line))
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("keys %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("keys %s: file holds no key", path)
	}
	return keys, nil
}

// specs builds the request list; base, when set, overrides the scenario URL.
func (sc *Scenario) specs(base string) ([]requestSpec, [][]byte, error) {
	if base == "" {
		base = sc.URL
	}
	base = strings.TrimRight(base, "/")
	var out []requestSpec
	for i, r := range sc.Requests {
		name := r.Name
		if name == "" {
			name = fmt.Sprintf("requests[%d]", i)
		}
		u := r.Path
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			if base == "" {
				return nil, nil, fmt.Errorf("scenario request %q: relative path %q and no url", name, u)
			}
			if !strings.HasPrefix(u, "/") {
				u = "/" + u
			}
			u = base + u
		}
		spec := requestSpec{name: name, weight: r.Weight, method: strings.ToUpper(r.Method)}
		if spec.weight == 0 {
			spec.weight = 1
		}
		if spec.method == "" {
			spec.method = "GET"
		}
		var err error
		if spec.url, err = parseTemplate(u, len(sc.keys)); err != nil {
			return nil, nil, fmt.Errorf("scenario request %q: %w", name, err)
		}
		if r.Body != "" {
			if spec.body, err = parseTemplate(r.Body, len(sc.keys)); err != nil {
				return nil, nil, fmt.Errorf("scenario request %q: %w", name, err)
			}
		}
		names := make([]string, 0, len(r.Headers))
		for k := range r.Headers {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			spec.headers = append(spec.headers, [2]string{k, r.Headers[k]})
		}
		out = append(out, spec)
	}
	return out, sc.keys, nil
}
