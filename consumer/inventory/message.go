package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

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
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil {
		return nil, consumer.Permanentf(consumer.ClassInvalidPayload, "payload is not a JSON object: %v", describeJSONError(err))
	}
	if fields == nil {
		return nil, consumer.Permanentf(consumer.ClassInvalidPayload, "payload is not a JSON object: null")
	}
	var unexpected []string
	for k := range fields {
		if k != AttrProductCode && k != AttrInventoryCount {
			unexpected = append(unexpected, k)
		}
	}
	if len(unexpected) > 0 {
		sort.Strings(unexpected)
		return nil, consumer.Permanentf(consumer.ClassUnexpectedAttributes, "unexpected attributes: %s", strings.Join(unexpected, ", "))
	}
	var u ProductUpdate
	if raw, ok := fields[AttrProductCode]; ok && !isNull(raw) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, consumer.Permanentf(consumer.ClassInvalidPayload, "%s must be a string, got %s", AttrProductCode, jsonKind(raw))
		}
		u.ProductCode = &s
	}
	if raw, ok := fields[AttrInventoryCount]; ok && !isNull(raw) {
		if jsonKind(raw) != "number" {
			return nil, consumer.Permanentf(consumer.ClassInvalidPayload, "%s must be a number, got %s", AttrInventoryCount, jsonKind(raw))
		}
		n := json.Number(bytes.TrimSpace(raw))
		u.InventoryCount = &n
	}
	return &u, nil
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
