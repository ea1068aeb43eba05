package main

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Loading: YAML over the defaults, strictly, with key paths and lines.

// ConfigError is one problem with a config, located in its file when the
// position is known.
type ConfigError struct {
	File   string // the config file; empty for a config built in code
	Line   int    // 1-based; 0 when unknown
	Column int    // 1-based; 0 when unknown
	// Key is the dotted key path ("chat.temperature", "telegram.admins[1]");
	// empty when Msg names the key itself (unknown keys).
	Key string
	Msg string
}

// Error renders "file:line:col: key: message", leaving out what is unknown
// ("file: key: message" when the key was not written in the file).
func (e *ConfigError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Line, e.Column)
	case e.File != "":
		fmt.Fprintf(&b, "%s: ", e.File)
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// LoadConfig reads the YAML file at path over the built-in defaults and
// validates the result; a returned config is always valid. An empty path
// means DefaultConfigFile. When explicit is false a missing file is not an
// error and the defaults are returned; when it is true (--config was given)
// a missing file is an error wrapping fs.ErrNotExist.
//
// ${VAR} inside a scalar value is replaced by getenv("VAR") (os.Getenv when
// getenv is nil), "" when unset; "$${" writes a literal "${"; any other '$'
// is kept. Keys are never expanded. A number, boolean or duration that is
// empty (or expands to empty) keeps its default; an empty string or list
// sets it empty. Maps and lists replace their defaults rather than merge.
// Where a variable is unset Validate reports an error if the key is needed
// (see requiredEnvKey), and Warnings a warning otherwise.
//
// A YAML syntax error is one *ConfigError with its line and column. Other
// problems are all reported at once, joined in line order, each a
// *ConfigError naming the key and its line; problems at keys the file does
// not write come last. When some values could not be decoded, validation
// problems are reported only at keys the file writes, since the others may
// follow from the values that were not decoded.
func LoadConfig(path string, explicit bool, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if path == "" {
		if explicit {
			return nil, errors.New("config: empty config file name")
		}
		path = DefaultConfigFile
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			cfg := defaultConfig(getenv)
			if err := cfg.Validate(); err != nil {
				return nil, err
			}
			return cfg, nil
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, errs, err := decodeConfig(path, data, getenv)
	if err != nil {
		return nil, err
	}
	decoded := len(errs) == 0
	for _, e := range cfg.validate() {
		if decoded || e.Line > 0 {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return nil, joinConfigErrors(errs)
	}
	return cfg, nil
}

// parseConfig decodes data (named file in messages) over the defaults,
// without validating.
func parseConfig(file string, data []byte, getenv func(string) string) (*Config, error) {
	cfg, errs, err := decodeConfig(file, data, getenv)
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, joinConfigErrors(errs)
	}
	return cfg, nil
}

// decodeConfig decodes data (named file in messages) over the defaults,
// without validating. err is a YAML syntax error, and cfg is nil with it;
// errs lists the values that could not be decoded, which keep their
// defaults in cfg.
func decodeConfig(file string, data []byte, getenv func(string) string) (cfg *Config, errs []*ConfigError, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, syntaxError(file, data, err)
	}
	cfg = defaultConfig(getenv)
	d := &decoder{file: file, getenv: getenv, src: &configSource{file: file, pos: map[string]position{}}}
	cfg.source = d.src
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		root := doc.Content[0]
		if r := d.resolve(root, ""); r != nil && r.Kind != yaml.MappingNode && !isNull(r) {
			d.errorf(r, "", "the config must be a mapping of sections (storage, providers, models, ...), got %s", describe(r))
		} else {
			d.value(root, reflect.ValueOf(cfg).Elem(), "")
		}
	}
	return cfg, d.errs, nil
}

// joinConfigErrors sorts errs in line order, stably, those without a line
// last, and returns them as one error.
func joinConfigErrors(errs []*ConfigError) error {
	slices.SortStableFunc(errs, func(a, b *ConfigError) int {
		if (a.Line == 0) != (b.Line == 0) {
			return cmp.Compare(b.Line, a.Line) // 0 sorts last
		}
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return configErrors(errs)
}

// configErrors is several problems with one config. errors.As finds each
// *ConfigError in it.
type configErrors []*ConfigError

// Error renders one problem per line, under a line that counts them when
// there are several.
func (es configErrors) Error() string {
	var b strings.Builder
	if len(es) > 1 {
		if f := es[0].File; f != "" {
			b.WriteString(f + ": ")
		}
		fmt.Fprintf(&b, "%d problems:", len(es))
	}
	for i, e := range es {
		if i > 0 || len(es) > 1 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func (es configErrors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// configSource is where a config was read from.
type configSource struct {
	file string
	// pos maps a dotted key path to where it was written.
	pos map[string]position
	// unset lists, in the order met, the values that name an environment
	// variable that is unset or empty.
	unset []unsetVar
}

type position struct{ line, column int }

// unsetVar is a value at key that names environment variables that are
// unset (or empty). For a list item that expanded to nothing, and so was
// left out, key is the list's and leftOut is true.
type unsetVar struct {
	key     string
	names   []string
	pos     position
	leftOut bool
}

// unsetVars returns the variables unset in the value at key, and where
// the first is written; none when the config was not read from a file.
func (s *configSource) unsetVars(key string) (names []string, pos position) {
	if s == nil {
		return nil, position{}
	}
	for _, u := range s.unset {
		if u.key != key {
			continue
		}
		if names == nil {
			pos = u.pos
		}
		for _, name := range u.names {
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	return names, pos
}

// decoder decodes a yaml.Node tree into a Config, strictly: every key must
// name a field and every value must fit its type. It keeps going after a
// problem so that all are reported.
type decoder struct {
	file   string
	getenv func(string) string
	src    *configSource
	errs   []*ConfigError
	// steps counts values decoded, against alias bombs; merging holds the
	// mappings being merged, against merge cycles.
	steps   int
	merging map[*yaml.Node]bool
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	shardsType   = reflect.TypeFor[Shards]()
)

// maxAliasDepth bounds alias resolution, against alias loops.
const maxAliasDepth = 32

// maxDecodeSteps bounds the values one config may decode, far above any
// real config, so that aliases cannot make decoding explode.
const maxDecodeSteps = 100_000

// step counts one decoded value and reports whether decoding may go on.
func (d *decoder) step(n *yaml.Node) bool {
	d.steps++
	if d.steps == maxDecodeSteps {
		d.errorf(n, "", "too many values (aliases expanding without end?)")
	}
	return d.steps < maxDecodeSteps
}

func (d *decoder) errorf(n *yaml.Node, key, format string, args ...any) {
	e := &ConfigError{File: d.file, Key: key, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// resolve follows aliases to the node they name.
func (d *decoder) resolve(n *yaml.Node, key string) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i == maxAliasDepth {
			d.errorf(n, key, "aliases nested too deeply")
			return nil
		}
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.DocumentNode {
		d.errorf(n, key, "unexpected document")
		return nil
	}
	return n
}

// value decodes n into v. It reports whether v was set: false when n is
// empty (or expands to empty) for a type whose default then stays.
func (d *decoder) value(n *yaml.Node, v reflect.Value, key string) bool {
	n = d.resolve(n, key)
	if n == nil || !d.step(n) {
		return false
	}
	// A value decoded again (through a merge key) replaces what was
	// recorded of the first.
	if len(d.src.unset) > 0 {
		d.src.unset = slices.DeleteFunc(d.src.unset, func(u unsetVar) bool { return keyWithin(u.key, key) })
	}
	if v.Type() == durationType {
		return d.scalar(n, v, key)
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structure(n, v, key)
		return true
	case reflect.Map:
		d.mapping(n, v, key)
		return true
	case reflect.Slice:
		d.sequence(n, v, key)
		return true
	case reflect.Pointer:
		if isNull(n) {
			v.SetZero()
			return true
		}
		p := reflect.New(v.Type().Elem())
		if !d.value(n, p.Elem(), key) {
			return false
		}
		v.Set(p)
		return true
	default:
		return d.scalar(n, v, key)
	}
}

// pairs calls f for each key and value of mapping n, merge keys ("<<")
// first so that the mapping's own keys override what they bring in. It
// rejects duplicate and non-scalar keys and records key positions.
func (d *decoder) pairs(n *yaml.Node, key string, merge func(*yaml.Node), f func(k, v *yaml.Node, name, path string)) {
	if !d.step(n) {
		return
	}
	if d.merging[n] {
		d.errorf(n, key, "a merge key (<<) includes the mapping that holds it")
		return
	}
	if d.merging == nil {
		d.merging = map[*yaml.Node]bool{}
	}
	d.merging[n] = true
	defer delete(d.merging, n)
	for i := 0; i+1 < len(n.Content) && d.steps < maxDecodeSteps; i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!merge" {
			continue
		}
		v = d.resolve(v, key)
		switch {
		case v == nil:
		case v.Kind == yaml.MappingNode:
			merge(v)
		case v.Kind == yaml.SequenceNode:
			for _, m := range v.Content {
				if d.steps >= maxDecodeSteps {
					return
				}
				if m = d.resolve(m, key); m != nil && m.Kind == yaml.MappingNode {
					merge(m)
				} else if m != nil {
					d.errorf(m, key, "a merge key (<<) takes mappings, got %s", describe(m))
				}
			}
		default:
			d.errorf(v, key, "a merge key (<<) takes a mapping, got %s", describe(v))
		}
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !d.step(k) {
			return
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, key, "keys must be plain names, got %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			continue
		}
		name := k.Value
		path := joinKey(key, name)
		if name == "" {
			d.errorf(k, key, "empty key")
			continue
		}
		if seen[name] {
			d.errorf(k, "", "duplicate key %q", path)
			continue
		}
		seen[name] = true
		d.src.pos[path] = position{k.Line, k.Column}
		f(k, v, name, path)
	}
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, key string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, key, "want a mapping, got %s", describe(n))
		return
	}
	names, index := yamlFields(v.Type())
	d.pairs(n, key, func(m *yaml.Node) { d.structure(m, v, key) }, func(k, val *yaml.Node, name, path string) {
		i, ok := index[name]
		if !ok {
			msg := fmt.Sprintf("unknown key %q", path)
			if s := suggest(name, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", joinKey(key, s))
			}
			d.errorf(k, "", "%s", msg)
			return
		}
		d.value(val, v.Field(i), path)
	})
}

// mapping decodes a YAML mapping into a Go map, replacing its old value.
// An empty mapping leaves the map nil.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, key string) {
	if isNull(n) {
		v.SetZero()
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, key, "want a mapping, got %s", describe(n))
		return
	}
	m := reflect.MakeMap(v.Type())
	var fill func(n *yaml.Node)
	fill = func(n *yaml.Node) {
		d.pairs(n, key, fill, func(_, val *yaml.Node, name, path string) {
			elem := reflect.New(v.Type().Elem()).Elem()
			d.value(val, elem, path)
			m.SetMapIndex(reflect.ValueOf(name), elem)
		})
	}
	fill(n)
	if m.Len() == 0 {
		v.SetZero()
		return
	}
	v.Set(m)
}

// sequence decodes a YAML list into a Go slice, replacing its old value.
// Items that expand to empty are left out; an empty list leaves it nil.
func (d *decoder) sequence(n *yaml.Node, v reflect.Value, key string) {
	if isNull(n) {
		v.SetZero()
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, key, "want a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for _, item := range n.Content {
		// Items are named by their index in the decoded list, which is
		// the one validation reports.
		path := fmt.Sprintf("%s[%d]", key, s.Len())
		if r := d.resolve(item, path); r != nil && r.Kind == yaml.ScalarNode && !isNull(r) {
			if text, expanded := expandEnv(r.Value, d.getenv); expanded && strings.TrimSpace(text) == "" {
				// Record the unset variables, at the list.
				before := len(d.src.unset)
				d.expand(r, key)
				if len(d.src.unset) > before {
					d.src.unset[before].leftOut = true
				}
				continue
			}
		}
		d.src.pos[path] = position{item.Line, item.Column}
		elem := reflect.New(v.Type().Elem()).Elem()
		if d.value(item, elem, path) {
			s = reflect.Append(s, elem)
		}
	}
	if s.Len() == 0 {
		v.SetZero()
		return
	}
	v.Set(s)
}

// scalar decodes a scalar node into a string, bool, integer, float or
// duration.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, key string) bool {
	want := describeType(v.Type())
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, key, "want %s, got %s", want, describe(n))
		return false
	}
	if v.Kind() == reflect.String {
		if isNull(n) {
			v.SetString("")
			return true
		}
		s, _ := d.expand(n, key)
		v.SetString(s)
		return true
	}
	if isNull(n) {
		return false
	}
	s, expanded := d.expand(n, key)
	s = strings.TrimSpace(s)
	if expanded && s == "" {
		return false
	}
	bad := func() bool {
		d.errorf(n, key, "want %s, got %q", want, s)
		return false
	}
	switch {
	case v.Type() == shardsType && strings.EqualFold(s, "auto"):
		v.SetInt(int64(ShardsAuto))
	case v.Type() == durationType:
		dur, err := time.ParseDuration(s)
		if err != nil {
			return bad()
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.Bool:
		switch strings.ToLower(s) {
		case "true", "yes", "on":
			v.SetBool(true)
		case "false", "no", "off":
			v.SetBool(false)
		default:
			return bad()
		}
	case v.CanInt():
		i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, v.Type().Bits())
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				d.errorf(n, key, "%s is out of range", s)
				return false
			}
			return bad()
		}
		v.SetInt(i)
	case v.CanFloat():
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return bad()
		}
		v.SetFloat(f)
	default:
		// Every field type of Config is handled above.
		d.errorf(n, key, "cannot decode into %s", v.Type())
		return false
	}
	return true
}

// expand expands the ${VAR}s of scalar n, the value at key, and records
// those that are unset or empty.
func (d *decoder) expand(n *yaml.Node, key string) (string, bool) {
	var unset []string
	s, expanded := expandEnv(n.Value, func(name string) string {
		v := d.getenv(name)
		if v == "" && !slices.Contains(unset, name) {
			unset = append(unset, name)
		}
		return v
	})
	if len(unset) > 0 {
		d.src.unset = append(d.src.unset, unsetVar{key: key, names: unset, pos: position{n.Line, n.Column}})
	}
	return s, expanded
}

// yamlFields lists the YAML names of struct type t's fields and maps each
// to its field index.
func yamlFields(t reflect.Type) ([]string, map[string]int) {
	var names []string
	index := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		names = append(names, name)
		index[name] = i
	}
	return names, index
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node holds, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

func describeType(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 1s or 1500ms"
	case t == shardsType:
		return "auto or a number of shards"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "an integer"
	case t.Kind() == reflect.Slice:
		return "a list"
	}
	return "a mapping"
}

// keyWithin reports whether key is parent or a key inside it.
func keyWithin(key, parent string) bool {
	rest, ok := strings.CutPrefix(key, parent)
	return ok && (rest == "" || parent == "" || rest[0] == '.' || rest[0] == '[')
}

func joinKey(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// expandEnv replaces ${NAME} (NAME being letters, digits and '_', not
// starting with a digit) with getenv(NAME), and "$${" with a literal "${".
// Any other '$' is kept. expanded reports whether a variable was replaced.
func expandEnv(s string, getenv func(string) string) (out string, expanded bool) {
	if !strings.Contains(s, "${") {
		return s, false
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			continue
		}
		if strings.HasPrefix(s[i:], "${") {
			if end := strings.IndexByte(s[i+2:], '}'); end >= 0 && isEnvName(s[i+2:i+2+end]) {
				b.WriteString(getenv(s[i+2 : i+2+end]))
				i += 3 + end
				expanded = true
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String(), expanded
}

func isEnvName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, c := range []byte(s) {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// suggest returns the known name closest to an unknown one, or "" when none
// is close enough to be a likely typo.
func suggest(name string, known []string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	best, bestDist := "", 3
	for _, k := range known {
		dist := editDistance(norm(name), norm(k))
		if dist < bestDist && dist <= max(1, len(k)/3) {
			best, bestDist = k, dist
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
