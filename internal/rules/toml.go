package rules

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// ParseNetlifyTOML parses the [[redirects]] and [[headers]] tables of a
// netlify.toml; its other settings are not sitehost's. Rules have Source
// NetlifyTOML.
func ParseNetlifyTOML(data []byte) ([]Redirect, []HeaderRule, []Error) {
	if errs, big := tooLarge(NetlifyTOML, data); big {
		return nil, nil, errs
	}
	el := errorList{file: NetlifyTOML}
	doc, err := decodeTOML(data)
	if err != nil {
		line := 0
		var de *toml.DecodeError
		if errors.As(err, &de) {
			line, _ = de.Position()
		}
		el.add(line, "Could not parse configuration file: %v", err)
		return nil, nil, el.errs
	}
	var pos tomlPos
	if doc["redirects"] != nil || doc["headers"] != nil {
		pos = tomlPositions(data)
	}
	rs := parseTOMLRedirects(doc["redirects"], pos.of("redirects"), &el)
	hs := parseTOMLHeaders(doc["headers"], pos.of("headers"), &el)
	return rs, hs, el.errs
}

// decodeTOML decodes data into generic values. go-toml is third-party code
// fed a deploy's file; a panic in it must not take the publisher down.
func decodeTOML(data []byte) (doc map[string]any, err error) {
	defer func() {
		if p := recover(); p != nil {
			doc, err = nil, fmt.Errorf("toml decoder failed: %v", p)
		}
	}()
	if err := toml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	return doc, nil
}

func parseTOMLRedirects(v any, at tableLines, el *errorList) []Redirect {
	return tomlTables(v, at, el, "redirects", "Redirects must be objects not: %s", func(m map[string]any, line int) (Redirect, bool) {
		raw, ok := tomlRedirect(m, line, el)
		if !ok {
			return Redirect{}, false
		}
		return raw.finish(NetlifyTOML, line, el)
	})
}

// tomlTables walks the array of tables under key ("redirects", "headers"),
// reading each with read and reporting what is not a table, with its line,
// in upstream's words; past maxRules the rest are ignored.
func tomlTables[T any](v any, at tableLines, el *errorList, key, notTable string, read func(map[string]any, int) (T, bool)) []T {
	if v == nil {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		el.add(at.key, `Could not parse configuration file: %q must be an array, not %s`, key, describe(v))
		return nil
	}
	var out []T
	for i, item := range list {
		line := at.element(i)
		if len(out) == maxRules {
			el.add(line, "more than %d [[%s]] tables; this one and the rest are ignored", maxRules, key)
			break
		}
		m, ok := item.(map[string]any)
		if !ok {
			el.add(line, notTable, describe(item))
			continue
		}
		if r, ok := read(m, line); ok {
			out = append(out, r)
		}
	}
	return out
}

// tomlRedirect reads one [[redirects]] table, with upstream's older field
// names (origin, destination, params, parameters, sign, signing) as
// fallbacks. Unknown fields, such as rate_limit, are ignored.
func tomlRedirect(m map[string]any, line int, el *errorList) (rawRedirect, bool) {
	var raw rawRedirect
	bad := func(format string, args ...any) (rawRedirect, bool) {
		el.add(line, format, args...)
		return raw, false
	}
	from, ok := firstOf(m, "from", "origin")
	if !ok {
		return bad(`Missing "from" field`)
	}
	if raw.from, ok = from.(string); !ok {
		return bad(`"from" must be a string, not %s`, describe(from))
	}
	if to, ok := firstOf(m, "to", "destination"); ok {
		if raw.to, ok = to.(string); !ok {
			return bad(`"to" must be a string, not %s`, describe(to))
		}
		raw.hasTo = true
	}
	if st, ok := m["status"]; ok {
		status, ok := tomlStatus(st)
		if !ok {
			return bad("Invalid status code: %s", describe(st))
		}
		raw.status, raw.hasStatus = status, true
	}
	if f, ok := m["force"]; ok {
		if raw.force, ok = f.(bool); !ok {
			return bad(`"force" must be true or false, not %s`, describe(f))
		}
	}
	if q, ok := firstOf(m, "query", "params", "parameters"); ok {
		qm, ok := q.(map[string]any)
		if !ok {
			return bad(`"query" must be an object, not %s`, describe(q))
		}
		raw.query = make(map[string]string, len(qm))
		for k, v := range qm {
			s, ok := scalarString(v)
			if !ok {
				return bad("query parameter %q must be a string, not %s", k, describe(v))
			}
			raw.query[k] = s
		}
	}
	if c, ok := m["conditions"]; ok {
		cm, ok := c.(map[string]any)
		if !ok {
			return bad(`"conditions" must be an object, not %s`, describe(c))
		}
		// Sorted, so that of "Country" and "country" the lowercase one
		// wins, as upstream has it, whatever the map order.
		for _, k := range slices.Sorted(maps.Keys(cm)) {
			vs, ok := stringList(cm[k])
			if !ok {
				return bad("condition %q must be a string or an array of strings, not %s", k, describe(cm[k]))
			}
			if err := setCondition(&raw.conditions, k, vs); err != nil {
				return bad("%v", err)
			}
		}
	}
	if h, ok := m["headers"]; ok {
		hm, ok := h.(map[string]any)
		if !ok {
			return bad(`"headers" field must be an object, not %s`, describe(h))
		}
		raw.headers = make(map[string]string, len(hm))
		for k, v := range hm {
			s, ok := v.(string)
			if !ok {
				return bad("header %q must be a string, not %s", k, describe(v))
			}
			raw.headers[k] = s
		}
	}
	if s, ok := firstOf(m, "signed", "signing", "sign"); ok {
		if raw.signed, ok = s.(string); !ok {
			return bad(`"signed" must be a string, not %s`, describe(s))
		}
	}
	return raw, true
}

// tomlStatus accepts an integer, or a string of digits, as upstream's
// parseInt does for the common cases.
func tomlStatus(v any) (int, bool) {
	switch s := v.(type) {
	case int64:
		// Clamped only so that int conversion cannot wrap: checkStatus
		// refuses anything this far out anyway.
		return int(min(max(s, math.MinInt32), math.MaxInt32)), true
	case float64:
		if s == float64(int64(s)) && s >= 0 && s < 1<<20 {
			return int(s), true
		}
	case string:
		t := trimJS(s)
		if isDigits(t) {
			if n, err := strconv.Atoi(t); err == nil {
				return n, true
			}
		}
	}
	return 0, false
}

func parseTOMLHeaders(v any, at tableLines, el *errorList) []HeaderRule {
	return tomlTables(v, at, el, "headers", "Header must be an object not: %s", func(m map[string]any, line int) (HeaderRule, bool) {
		return tomlHeaderRule(m, line, el)
	})
}

// tomlHeaderRule reads one [[headers]] table. A value is a string, whose
// comma-separated parts upstream rejoins with ", ", or an array of strings,
// one header value each.
func tomlHeaderRule(m map[string]any, line int, el *errorList) (HeaderRule, bool) {
	rawFor, ok := m["for"]
	if !ok {
		el.add(line, `Missing "for" field`)
		return HeaderRule{}, false
	}
	forPath, ok := rawFor.(string)
	if !ok {
		el.add(line, `"for" must be a string not: %s`, describe(rawFor))
		return HeaderRule{}, false
	}
	rawValues, ok := m["values"]
	if !ok {
		return HeaderRule{}, false // upstream: no values, no rule, no error
	}
	vm, ok := rawValues.(map[string]any)
	if !ok {
		el.add(line, `"values" must be an object not: %s`, describe(rawValues))
		return HeaderRule{}, false
	}
	h := HeaderRule{For: trimJS(forPath), Source: NetlifyTOML, Line: line}
	// A map has no order; sorting keeps the rule (and the manifest)
	// deterministic.
	for _, k := range slices.Sorted(maps.Keys(vm)) {
		name := trimJS(k)
		if name == "" {
			el.add(line, "Empty header name")
			return HeaderRule{}, false
		}
		var values []string
		switch v := vm[k].(type) {
		case string:
			values = []string{joinCommaList(trimJS(v))}
		case []any:
			for i, item := range v {
				s, ok := item.(string)
				if !ok {
					el.add(line, "Header \"%s[%d]\" value must be a string not: %s", name, i, describe(item))
					return HeaderRule{}, false
				}
				values = append(values, trimJS(s))
			}
		default:
			el.add(line, "Header %q value must be a string not: %s", name, describe(v))
			return HeaderRule{}, false
		}
		if err := checkValues(name, values); err != nil {
			el.add(line, "%v; it is left out", err)
			continue
		}
		if len(values) > 0 {
			h.Values = append(h.Values, Header{Name: name, Values: values})
		}
	}
	if len(h.Values) == 0 {
		return HeaderRule{}, false
	}
	return h, true
}

func checkValues(name string, values []string) error {
	for _, v := range values {
		if err := checkHeader(name, v); err != nil {
			return err
		}
	}
	if len(values) == 0 {
		return checkHeader(name, "")
	}
	return nil
}

// joinCommaList normalises "a,\n  b" to "a, b", as upstream does for a
// multi-line header value.
func joinCommaList(s string) string {
	if !strings.Contains(s, ",") {
		return s
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = trimJS(p)
	}
	return strings.Join(parts, ", ")
}

func firstOf(m map[string]any, keys ...string) (any, bool) {
	for _, k := range keys {
		if v, ok := m[k]; ok {
			return v, true
		}
	}
	return nil, false
}

// scalarString turns a TOML scalar into the text a query value is compared
// with.
func scalarString(v any) (string, bool) {
	switch s := v.(type) {
	case string:
		return s, true
	case int64:
		return strconv.FormatInt(s, 10), true
	case float64:
		return strconv.FormatFloat(s, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(s), true
	}
	return "", false
}

// stringList accepts a comma-separated string (the _redirects form) or an
// array of strings.
func stringList(v any) ([]string, bool) {
	switch s := v.(type) {
	case string:
		return strings.Split(s, ","), true
	case []any:
		out := make([]string, 0, len(s))
		for _, item := range s {
			str, ok := item.(string)
			if !ok {
				return nil, false
			}
			out = append(out, str)
		}
		return out, true
	}
	return nil, false
}

// describe names a TOML value in an error: its type, and the value when
// it is short.
func describe(v any) string {
	switch s := v.(type) {
	case string:
		if len(s) > 60 {
			s = s[:60] + "…"
		}
		return strconv.Quote(s)
	case map[string]any:
		return "a table"
	case []any:
		return "an array"
	case bool, int64, float64:
		return fmt.Sprint(s)
	}
	return fmt.Sprintf("a %T", v)
}

// Netlify's deploy contexts, for NetlifyEnv.
const (
	ContextProduction    = "production"
	ContextDeployPreview = "deploy-preview"
	ContextBranchDeploy  = "branch-deploy"
)

// NetlifyEnv is the build environment netlify.toml sets for a deploy:
// [build.environment], overridden by [context.<name>.environment] for each
// of contexts in turn (Netlify's precedence: the deploy context, then a
// branch's own context). A file that does not parse sets nothing; the
// deploy's rules report it.
func NetlifyEnv(data []byte, contexts ...string) map[string]string {
	if _, big := tooLarge(NetlifyTOML, data); big {
		return nil
	}
	doc, err := decodeTOML(data)
	if err != nil {
		return nil
	}
	env := map[string]string{}
	add := func(v any) {
		m, _ := v.(map[string]any)
		for k, val := range m {
			switch val := val.(type) {
			case string:
				env[k] = val
			case int64, float64, bool:
				env[k] = fmt.Sprint(val)
			}
		}
	}
	table := func(v any, key string) any {
		m, _ := v.(map[string]any)
		return m[key]
	}
	add(table(doc["build"], "environment"))
	for _, c := range contexts {
		add(table(table(doc["context"], c), "environment"))
	}
	return env
}
