package inventory

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/kafkasub/kafkasub/consumer"
)

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload string
		class   consumer.ErrorClass
		message string
		code    string
		count   string
	}{
		{name: "A complete update decodes", payload: `{"product_code": "A-1", "inventory_count": 25}`, code: "A-1", count: "25"},
		{name: "Missing fields decode as absent", payload: `{}`},
		{name: "Null fields decode as absent", payload: `{"product_code": null, "inventory_count": null}`},
		{name: "A payload that is not JSON is an invalid payload", payload: `this is no good`, class: consumer.ClassInvalidPayload, message: "payload is not a JSON object"},
		{name: "An empty payload is an invalid payload", payload: ``, class: consumer.ClassInvalidPayload, message: "payload is not a JSON object"},
		{name: "A JSON array is an invalid payload", payload: `[1, 2]`, class: consumer.ClassInvalidPayload, message: "payload is not a JSON object"},
		{name: "JSON null is an invalid payload", payload: `null`, class: consumer.ClassInvalidPayload, message: "payload is not a JSON object: null"},
		{name: "Data after the object is an invalid payload", payload: `{"product_code": "A"} {}`, class: consumer.ClassInvalidPayload, message: "payload is not a JSON object: invalid character '{' after top-level value"},
		{name: "An unexpected attribute is named", payload: `{"greeting": "hello"}`, class: consumer.ClassUnexpectedAttributes, message: "unexpected attributes: greeting"},
		{name: "Every unexpected attribute is named, sorted", payload: `{"product_code": "A", "zeta": 1, "alpha": 2}`, class: consumer.ClassUnexpectedAttributes, message: "unexpected attributes: alpha, zeta"},
		{name: "A product code that is not a string names the field", payload: `{"product_code": 12, "inventory_count": 1}`, class: consumer.ClassInvalidPayload, message: "product_code must be a string, got number"},
		{name: "An inventory count that is a string names the field", payload: `{"product_code": "A", "inventory_count": "5"}`, class: consumer.ClassInvalidPayload, message: "inventory_count must be a number, got string"},
		{name: "An inventory count that is a boolean names the field", payload: `{"product_code": "A", "inventory_count": true}`, class: consumer.ClassInvalidPayload, message: "inventory_count must be a number, got boolean"},
		{name: "A fractional count decodes (the validator rejects it)", payload: `{"product_code": "A", "inventory_count": 2.5}`, code: "A", count: "2.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := Decode([]byte(tc.payload))
			if tc.class != "" {
				if err == nil {
					t.Fatalf("Decode(%q) = %+v, want a %s error", tc.payload, u, tc.class)
				}
				if !consumer.IsPermanent(err) || consumer.ClassOf(err) != tc.class {
					t.Fatalf("Decode(%q) error %v has class %q (permanent %v), want permanent %s", tc.payload, err, consumer.ClassOf(err), consumer.IsPermanent(err), tc.class)
				}
				if !strings.Contains(err.Error(), tc.message) {
					t.Fatalf("Decode(%q) error %q, want it to contain %q", tc.payload, err, tc.message)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode(%q): %v", tc.payload, err)
			}
			if got := deref(u.ProductCode); got != tc.code {
				t.Errorf("product code %q, want %q", got, tc.code)
			}
			if got := derefNum(u.InventoryCount); got != tc.count {
				t.Errorf("inventory count %q, want %q", got, tc.count)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefNum(n *json.Number) string {
	if n == nil {
		return ""
	}
	return string(*n)
}

func TestValidate(t *testing.T) {
	known := func(code string) bool { return code == "A-1" }
	for _, tc := range []struct {
		name     string
		payload  string
		messages []string
		want     Change
	}{
		{name: "A known product with a positive count is valid", payload: `{"product_code": "A-1", "inventory_count": 25}`, want: Change{Code: "A-1", Inventory: 25}},
		{name: "A count of zero is valid", payload: `{"product_code": "A-1", "inventory_count": 0}`, want: Change{Code: "A-1", Inventory: 0}},
		{name: "A negative count must be greater than or equal to 0", payload: `{"product_code": "A-1", "inventory_count": -1}`, messages: []string{MsgInventoryCountNegative}},
		{name: "An unknown product does not exist", payload: `{"product_code": "NO_SUCH_CODE", "inventory_count": 5}`, messages: []string{"Product code NO_SUCH_CODE does not exist"}},
		{name: "Every problem is collected", payload: `{"product_code": "NO_SUCH_CODE", "inventory_count": -3}`, messages: []string{"Product code NO_SUCH_CODE does not exist", MsgInventoryCountNegative}},
		{name: "Missing fields are both blank", payload: `{}`, messages: []string{MsgProductCodeBlank, MsgInventoryCountBlank}},
		{name: "An empty product code is blank", payload: `{"product_code": " ", "inventory_count": 1}`, messages: []string{MsgProductCodeBlank}},
		{name: "A fractional count must be an integer", payload: `{"product_code": "A-1", "inventory_count": 2.5}`, messages: []string{MsgInventoryCountInteger}},
		{name: "A count with an exponent must be an integer", payload: `{"product_code": "A-1", "inventory_count": 1e3}`, messages: []string{MsgInventoryCountInteger}},
		{name: "A count beyond int64 is too large", payload: `{"product_code": "A-1", "inventory_count": 99999999999999999999}`, messages: []string{MsgInventoryCountTooLarge}},
		{name: "A hugely negative count is negative", payload: `{"product_code": "A-1", "inventory_count": -99999999999999999999}`, messages: []string{MsgInventoryCountNegative}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := Decode([]byte(tc.payload))
			if err != nil {
				t.Fatal(err)
			}
			c, err := Validate(u, known)
			if tc.messages == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if c != tc.want {
					t.Fatalf("change %+v, want %+v", c, tc.want)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || consumer.ClassOf(err) != consumer.ClassValidationFailed || !consumer.IsPermanent(err) {
				t.Fatalf("Validate error %v, want a permanent ValidationFailed *ValidationError", err)
			}
			if strings.Join(ve.Messages, "|") != strings.Join(tc.messages, "|") {
				t.Fatalf("messages %q, want %q", ve.Messages, tc.messages)
			}
		})
	}
}

// FuzzDecodeAndValidate: no input panics, and every input is either a valid change or
// classified as a permanent InvalidPayload, UnexpectedAttributes or ValidationFailed.
func FuzzDecodeAndValidate(f *testing.F) {
	for _, s := range []string{
		`{"product_code": "A-1", "inventory_count": 25}`,
		`{"product_code": "A-1", "inventory_count": -1}`,
		`{"product_code": "NO_SUCH_CODE", "inventory_count": 5}`,
		`this is no good`,
		`{"greeting": "hello"}`,
		`{"product_code": 1, "inventory_count": "x"}`,
		`{"inventory_count": 1e400}`,
		`[]`, `null`, `{}`, ``, `{"product_code": "A-1", "inventory_count": 2.50}`,
	} {
		f.Add([]byte(s))
	}
	known := func(code string) bool { return code == "A-1" }
	f.Fuzz(func(t *testing.T, payload []byte) {
		u, err := Decode(payload)
		if err != nil {
			switch consumer.ClassOf(err) {
			case consumer.ClassInvalidPayload, consumer.ClassUnexpectedAttributes:
			default:
				t.Fatalf("Decode(%q) error %v has class %q", payload, err, consumer.ClassOf(err))
			}
			if !consumer.IsPermanent(err) {
				t.Fatalf("Decode(%q) error %v is not permanent", payload, err)
			}
			return
		}
		c, err := Validate(u, known)
		if err != nil {
			if consumer.ClassOf(err) != consumer.ClassValidationFailed || !consumer.IsPermanent(err) {
				t.Fatalf("Validate(%q) error %v is not a permanent ValidationFailed", payload, err)
			}
			return
		}
		if c.Code != "A-1" || c.Inventory < 0 {
			t.Fatalf("Validate(%q) accepted %+v", payload, c)
		}
	})
}
