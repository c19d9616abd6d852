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
	"unicode/utf8"

	"github.com/kafkasub/kafkasub/consumer"
)

// ProductUpdate is the message the Inventory Management system sends, as decoded: a field
// that is absent (or null) is nil.
type ProductUpdate struct {
	ProductCode    *string      `json:"product_code"`
	InventoryCount *json.Number `json:"inventory_count"`
}

// Change is a validated update: set the inventory of the product with Code.
type Change struct {
	Code      string
	Inventory int64
}

// Attribute names of ProductUpdate.
const (
	AttrProductCode    = "product_code"
	AttrInventoryCount = "inventory_count"
)

// Decode reads a ProductUpdate strictly. A payload that is not a JSON object, or a field
// of the wrong type, is a permanent consumer.ClassInvalidPayload error (naming the field);
// attributes the message does not define are a permanent
// consumer.ClassUnexpectedAttributes error naming them.
func Decode(payload []byte) (*ProductUpdate, error) {
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
	if start := skipSpace(payload, 0); start < len(payload) && payload[start] == '{' && json.Valid(payload) {
		// The common case, without a map: a well-formed object scanned in place.
		scanObject(payload, start, field)
	} else {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(payload, &fields); err != nil {
			return nil, consumer.Permanentf(consumer.ClassInvalidPayload, "payload is not a JSON object: %v", describeJSONError(err))
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
	if code != nil && !isNull(code) {
		s, ok := jsonString(code)
		if !ok {
			return nil, consumer.Permanentf(consumer.ClassInvalidPayload, "%s must be a string, got %s", AttrProductCode, jsonKind(code))
		}
		u.ProductCode = &s
	}
	if count != nil && !isNull(count) {
		if jsonKind(count) != "number" {
			return nil, consumer.Permanentf(consumer.ClassInvalidPayload, "%s must be a number, got %s", AttrInventoryCount, jsonKind(count))
		}
		n := json.Number(bytes.TrimSpace(count))
		u.InventoryCount = &n
	}
	return &u, nil
}

// jsonString decodes a JSON string value; ok is false when raw is not a string.
func jsonString(raw []byte) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		inner := raw[1 : len(raw)-1]
		if bytes.IndexByte(inner, '\\') < 0 && bytes.IndexByte(inner, '"') < 0 && utf8.Valid(inner) && !hasControl(inner) {
			return string(inner), true
		}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}

// scanObject calls field for every member of the JSON object starting at b[i]. b must be
// valid JSON (json.Valid); keys are decoded, values are passed raw.
func scanObject(b []byte, i int, field func(key string, val []byte)) {
	i++ // '{'
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] == '}' {
			return
		}
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		ks := i
		i = skipString(b, i)
		key, _ := jsonString(b[ks:i])
		i = skipSpace(b, i)
		i = skipSpace(b, i+1) // ':'
		vs := i
		i = skipValue(b, i)
		field(key, b[vs:i])
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b) && b[i] != '"'; i++ {
		if b[i] == '\\' {
			i++
		}
	}
	return i + 1
}

// skipValue returns the index after the value that starts at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
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

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// jsonKind names the JSON type of a raw value.
func jsonKind(raw json.RawMessage) string {
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

func describeJSONError(err error) string {
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

// ValidationError lists every problem of a message, in ActiveModel's wording
// ("Inventory count must be greater than or equal to 0").
type ValidationError struct {
	Messages []string
}

func (e *ValidationError) Error() string { return strings.Join(e.Messages, "; ") }

// Validation messages.
const (
	MsgProductCodeBlank       = "Product code can't be blank"
	MsgInventoryCountBlank    = "Inventory count can't be blank"
	MsgInventoryCountInteger  = "Inventory count must be an integer"
	MsgInventoryCountNegative = "Inventory count must be greater than or equal to 0"
	MsgInventoryCountTooLarge = "Inventory count must be less than or equal to 9223372036854775807"
	MsgProductCodeTooLong     = "Product code is too long (maximum is 64 characters)"
	MsgProductCodeInvalid     = "Product code is invalid (control characters and invalid UTF-8 name no product)"
)

// MsgProductCodeUnknown is the message for a product code with no product.
func MsgProductCodeUnknown(code string) string {
	return fmt.Sprintf("Product code %s does not exist", code)
}

// Validate checks u: product_code present; inventory_count present, an integer, >= 0;
// the product exists (exists is asked only for a present code). It collects every problem
// into one permanent consumer.ClassValidationFailed error wrapping a *ValidationError.
func Validate(u *ProductUpdate, exists func(code string) bool) (Change, error) {
	var msgs []string
	var c Change
	if u.ProductCode == nil || strings.TrimSpace(*u.ProductCode) == "" {
		msgs = append(msgs, MsgProductCodeBlank)
	} else if problem := CodeFormatProblem(*u.ProductCode); problem != "" {
		msgs = append(msgs, problem) // such a code names no row: it is not looked up
	} else {
		c.Code = *u.ProductCode
		if !exists(c.Code) {
			msgs = append(msgs, MsgProductCodeUnknown(c.Code))
		}
	}
	if u.InventoryCount == nil {
		msgs = append(msgs, MsgInventoryCountBlank)
	} else {
		// Like ActiveModel's only_integer: digits with an optional sign, no fraction or
		// exponent ("25.0" is not an integer).
		s := string(*u.InventoryCount)
		n, err := strconv.ParseInt(s, 10, 64)
		switch {
		case !isIntegerLiteral(s):
			msgs = append(msgs, MsgInventoryCountInteger)
		case strings.HasPrefix(s, "-") && (err != nil || n < 0):
			msgs = append(msgs, MsgInventoryCountNegative)
		case err != nil:
			msgs = append(msgs, MsgInventoryCountTooLarge)
		default:
			c.Inventory = n
		}
	}
	if len(msgs) > 0 {
		return Change{}, consumer.Permanent(consumer.ClassValidationFailed, &ValidationError{Messages: msgs})
	}
	return c, nil
}

func isIntegerLiteral(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
