package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kafkasub/kafkasub/consumer"
)

// decodeSeeds are the seed corpus of FuzzDecode: one payload of each class Decode knows.
var decodeSeeds = []string{
	`{"product_code": "A-1", "inventory_count": 25}`,
	` {"product_code":"A\u002d1","inventory_count":-0} `,
	`{"product_code":"A","product_code":"B","inventory_count":1}`,
	`{"greeting": "hello", "greeting": 1, "a\"b": null}`,
	`{"x": {"a": 1, "a": 2}}`,
	`{"product_code": "KB-MECH-001\u0000", "inventory_count": 1}`,
	`{"product_code": "\u001f\u007f\u2028\u2029", "inventory_count": 1}`,
	"{\"product_code\": \"\xff\", \"inventory_count\": [1, {\"a\": \"]\"}]}",
	`{"product_code": "\ud800"}`, `{"product_code": "\ud83d\ude00"}`,
	`{"product_code": "tab\there"}`, "{\"product_code\": \"raw\ttab\"}",
	`{"inventory_count": 1e3}`, `{"inventory_count": 25.0}`, `{"inventory_count": 9223372036854775808}`,
	`{"inventory_count": "5"}`, `{"product_code": 12}`, `{"product_code": 12, "zeta": 1}`,
	`{"product_code": "A"} {}`, "\ufeff{}", `[]`, `null`, `"x"`, `25`, `{`, ``, " \t\r\n",
	`this is no good`,
}

// FuzzDecode: no payload panics; every error is a permanent InvalidPayload or
// UnexpectedAttributes with a message; a decoded update encodes back (by encoding/json) to
// a payload that decodes to the same code and count; and Decode never accepts a payload
// the decoder it replaced read differently.
func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		u, err := Decode(payload)
		if err != nil {
			checkDecodeError(t, payload, err)
			if err.Error() == "" {
				t.Fatalf("Decode(%q) error has no message", payload)
			}
			if consumer.ClassOf(err) == consumer.ClassUnexpectedAttributes {
				if got, want := describe(u, err), describe(legacyDecode(payload)); got != want {
					t.Fatalf("Decode(%q):\n got  %s\n legacy %s", payload, got, want)
				}
			}
			return
		}
		if got, want := describe(u, nil), describe(legacyDecode(payload)); got != want {
			t.Fatalf("Decode(%q):\n got  %s\n legacy %s", payload, got, want)
		}
		again, err := json.Marshal(u)
		if err != nil {
			t.Fatalf("encoding %+v: %v", u, err)
		}
		u2, err := Decode(again)
		if err != nil {
			t.Fatalf("Decode(%q) of the re-encoded Decode(%q): %v", again, payload, err)
		}
		if got, want := describe(u2, nil), describe(u, nil); got != want {
			t.Fatalf("Decode(%q) re-encoded as %q decodes to %s, want %s", payload, again, got, want)
		}
	})
}

func describe(u *ProductUpdate, err error) string {
	if err != nil {
		return fmt.Sprintf("error %s: %v", consumer.ClassOf(err), err)
	}
	s := "code:"
	if u.ProductCode != nil {
		s += strconv.Quote(*u.ProductCode)
	}
	s += " count:"
	if u.InventoryCount != nil {
		s += string(*u.InventoryCount)
	}
	return s
}

// BenchmarkDecode: Decode against the decoder it replaced (legacyDecode), on a valid
// update and on a payload that is not JSON, in messages per second.
func BenchmarkDecode(b *testing.B) {
	for _, p := range []struct{ name, payload string }{
		{"valid", `{"product_code": "P-00042", "inventory_count": 25}`},
		{"not JSON", `this is no good`},
	} {
		for _, d := range []struct {
			name   string
			decode func([]byte) (*ProductUpdate, error)
		}{{"jsontext", Decode}, {"legacy", legacyDecode}} {
			b.Run(p.name+"/"+d.name, func(b *testing.B) {
				payload := []byte(p.payload)
				b.ReportAllocs()
				for b.Loop() {
					_, _ = d.decode(payload)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}

// legacyDecode is Decode as it was before jsontext: a hand-written scanner over
// encoding/json. It stays only as the baseline of BenchmarkDecode and FuzzDecode: it
// accepts duplicate keys (last wins), replaces invalid UTF-8 and unpaired surrogates with
// U+FFFD, and otherwise reads payloads as Decode does.
func legacyDecode(payload []byte) (*ProductUpdate, error) {
	var code, count []byte
	var unexpected []string
	field := func(key string, val []byte) {
		switch key {
		case AttrProductCode:
			code = val
		case AttrInventoryCount:
			count = val
		default:
			unexpected = append(unexpected, key)
		}
	}
	if start := legacySkipSpace(payload, 0); start < len(payload) && payload[start] == '{' && json.Valid(payload) {
		legacyScanObject(payload, start, field)
	} else {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(payload, &fields); err != nil {
			return nil, consumer.Permanentf(consumer.ClassInvalidPayload, "payload is not a JSON object: %v", legacyDescribeJSONError(err))
		}
		if fields == nil {
			return nil, consumer.Permanentf(consumer.ClassInvalidPayload, "payload is not a JSON object: null")
		}
		for k, v := range fields {
			field(k, v)
		}
	}
	if len(unexpected) > 0 {
		sort.Strings(unexpected)
		unexpected = slices.Compact(unexpected)
		return nil, consumer.Permanentf(consumer.ClassUnexpectedAttributes, "unexpected attributes: %s", strings.Join(unexpected, ", "))
	}
	var u ProductUpdate
	if code != nil && !legacyIsNull(code) {
		s, ok := legacyJSONString(code)
		if !ok {
			return nil, consumer.Permanentf(consumer.ClassInvalidPayload, "%s must be a string, got %s", AttrProductCode, legacyJSONKind(code))
		}
		u.ProductCode = &s
	}
	if count != nil && !legacyIsNull(count) {
		if legacyJSONKind(count) != "number" {
			return nil, consumer.Permanentf(consumer.ClassInvalidPayload, "%s must be a number, got %s", AttrInventoryCount, legacyJSONKind(count))
		}
		n := json.Number(bytes.TrimSpace(count))
		u.InventoryCount = &n
	}
	return &u, nil
}

func legacyJSONString(raw []byte) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		inner := raw[1 : len(raw)-1]
		if bytes.IndexByte(inner, '\\') < 0 && bytes.IndexByte(inner, '"') < 0 && utf8.Valid(inner) && !legacyHasControl(inner) {
			return string(inner), true
		}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

func legacyHasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}

func legacyScanObject(b []byte, i int, field func(key string, val []byte)) {
	i++ // '{'
	for {
		i = legacySkipSpace(b, i)
		if i >= len(b) || b[i] == '}' {
			return
		}
		if b[i] == ',' {
			i = legacySkipSpace(b, i+1)
		}
		ks := i
		i = legacySkipString(b, i)
		key, _ := legacyJSONString(b[ks:i])
		i = legacySkipSpace(b, i)
		i = legacySkipSpace(b, i+1) // ':'
		vs := i
		i = legacySkipValue(b, i)
		field(key, b[vs:i])
	}
}

func legacySkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func legacySkipString(b []byte, i int) int {
	for i++; i < len(b) && b[i] != '"'; i++ {
		if b[i] == '\\' {
			i++
		}
	}
	return i + 1
}

func legacySkipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return legacySkipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = legacySkipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}

func legacyIsNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func legacyJSONKind(raw json.RawMessage) string {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func legacyDescribeJSONError(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("%s at byte %d", syn.Error(), syn.Offset)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return "a JSON " + typ.Value
	}
	return err.Error()
}
