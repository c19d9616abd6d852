package inventory

import (
	"errors"
	"strings"
	"testing"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/validation"
)

func TestValidator(t *testing.T) {
	for _, tc := range []struct {
		name     string
		payload  string
		messages []string
		want     Change
	}{
		{name: "A known product with a positive count is valid", payload: `{"product_code": "A-1", "inventory_count": 25}`, want: Change{Code: "A-1", Inventory: 25}},
		{name: "A count of zero is valid", payload: `{"product_code": "A-1", "inventory_count": 0}`, want: Change{Code: "A-1", Inventory: 0}},
		{name: "A negative count must be greater than or equal to 0", payload: `{"product_code": "A-1", "inventory_count": -1}`, messages: []string{MsgInventoryCountNegative}},
		{name: "An unknown product does not exist", payload: `{"product_code": "NO_SUCH_CODE", "inventory_count": 5}`, messages: []string{MsgProductCodeUnknown("NO_SUCH_CODE")}},
		{name: "Every problem is collected, in the order the validations are declared", payload: `{"inventory_count": -3, "product_code": "NO_SUCH_CODE"}`, messages: []string{"Product code NO_SUCH_CODE does not exist", MsgInventoryCountNegative}},
		{name: "Missing fields are both blank", payload: `{}`, messages: []string{MsgProductCodeBlank, MsgInventoryCountBlank}},
		{name: "A product code of spaces is blank, not unknown", payload: `{"product_code": " ", "inventory_count": 1}`, messages: []string{MsgProductCodeBlank}},
		{name: "Spaces around a known code make another code", payload: `{"product_code": " A-1 ", "inventory_count": 1}`, messages: []string{MsgProductCodeUnknown(" A-1 ")}},
		{name: "A fractional count must be an integer", payload: `{"product_code": "A-1", "inventory_count": 2.5}`, messages: []string{MsgInventoryCountInteger}},
		{name: "A count with an exponent must be an integer", payload: `{"product_code": "A-1", "inventory_count": 1e3}`, messages: []string{MsgInventoryCountInteger}},
		{name: "A count with a zero fraction must be an integer", payload: `{"product_code": "A-1", "inventory_count": 25.0}`, messages: []string{MsgInventoryCountInteger}},
		{name: "A negative fraction must be an integer, not greater than or equal to 0", payload: `{"product_code": "A-1", "inventory_count": -2.5}`, messages: []string{MsgInventoryCountInteger}},
		{name: "Negative zero is a count of zero", payload: `{"product_code": "A-1", "inventory_count": -0}`, want: Change{Code: "A-1", Inventory: 0}},
		{name: "A count of 2^63-1 is valid", payload: `{"product_code": "A-1", "inventory_count": 9223372036854775807}`, want: Change{Code: "A-1", Inventory: 9223372036854775807}},
		{name: "A count of 2^63 is too large", payload: `{"product_code": "A-1", "inventory_count": 9223372036854775808}`, messages: []string{MsgInventoryCountTooLarge}},
		{name: "A count beyond int64 is too large", payload: `{"product_code": "A-1", "inventory_count": 99999999999999999999}`, messages: []string{MsgInventoryCountTooLarge}},
		{name: "A hugely negative count must be greater than or equal to 0", payload: `{"product_code": "A-1", "inventory_count": -99999999999999999999}`, messages: []string{MsgInventoryCountNegative}},
		{name: "A code of 64 characters can name a product", payload: `{"product_code": "` + strings.Repeat("é", 64) + `", "inventory_count": 1}`, messages: []string{MsgProductCodeUnknown(strings.Repeat("é", 64))}},
		{name: "A code of 65 characters is too long", payload: `{"product_code": "` + strings.Repeat("é", 65) + `", "inventory_count": 1}`, messages: []string{MsgProductCodeTooLong}},
		{name: "A code of 64 KiB is too long", payload: `{"product_code": "` + strings.Repeat("x", 64<<10) + `", "inventory_count": 1}`, messages: []string{MsgProductCodeTooLong}},
		{name: "A code with letters of any script can name a product", payload: `{"product_code": "Straße-Ω-42", "inventory_count": 1}`, messages: []string{MsgProductCodeUnknown("Straße-Ω-42")}},
		{name: "A NUL after a known code is invalid", payload: `{"product_code": "A-1\u0000", "inventory_count": 1}`, messages: []string{MsgProductCodeInvalid}},
		{name: "A NUL before a known code is invalid", payload: `{"product_code": "\u0000A-1", "inventory_count": 1}`, messages: []string{MsgProductCodeInvalid}},
		{name: "A C0 control character is invalid", payload: `{"product_code": "A\u0001-1", "inventory_count": 1}`, messages: []string{MsgProductCodeInvalid}},
		{name: "DEL is invalid", payload: `{"product_code": "A\u007f-1", "inventory_count": 1}`, messages: []string{MsgProductCodeInvalid}},
		{name: "A C1 control character is invalid", payload: `{"product_code": "A\u0085-1", "inventory_count": 1}`, messages: []string{MsgProductCodeInvalid}},
		{name: "A line separator is invalid", payload: `{"product_code": "A\u2028-1", "inventory_count": 1}`, messages: []string{MsgProductCodeInvalid}},
		{name: "A trailing newline is invalid", payload: `{"product_code": "A-1\n", "inventory_count": 1}`, messages: []string{MsgProductCodeInvalid}},
		{name: "An invalid code and a negative count are both reported", payload: `{"product_code": "A-1\u0000", "inventory_count": -7}`, messages: []string{MsgProductCodeInvalid, MsgInventoryCountNegative}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := Decode([]byte(tc.payload))
			if err != nil {
				t.Fatal(err)
			}
			var asked []string
			c, err := NewValidator(func(code string) bool { asked = append(asked, code); return code == "A-1" }).Validate(u)
			for _, code := range asked {
				if _, ok := CodeToLookUp(u); !ok || code != *u.ProductCode {
					t.Errorf("the validator asked whether %q exists, which the service does not look up", code)
				}
			}
			if tc.messages == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if c != tc.want {
					t.Fatalf("change %+v, want %+v", c, tc.want)
				}
				return
			}
			var errs validation.Errors
			if !errors.As(err, &errs) || consumer.ClassOf(err) != consumer.ClassValidationFailed || !consumer.IsPermanent(err) {
				t.Fatalf("Validate error %v, want a permanent ValidationFailed validation.Errors", err)
			}
			if strings.Join(errs, "|") != strings.Join(tc.messages, "|") {
				t.Fatalf("messages %q, want %q", []string(errs), tc.messages)
			}
		})
	}
}

func TestCodeToLookUp(t *testing.T) {
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name string
		code *string
		want bool
	}{
		{name: "A code that can name a row is looked up", code: str("KB-MECH-001"), want: true},
		{name: "A code with spaces around it is looked up as it is", code: str(" KB-MECH-001 "), want: true},
		{name: "An absent code is not looked up", code: nil},
		{name: "A blank code is not looked up", code: str(" \t")},
		{name: "A code with a NUL is not looked up", code: str("KB-MECH-001\x00")},
		{name: "A code of invalid UTF-8 is not looked up", code: str("KB-MECH-\xff")},
		{name: "An encoded surrogate is not looked up", code: str("KB-MECH-\xed\xa0\x80")},
		{name: "A code longer than the column is not looked up", code: str(strings.Repeat("x", MaxCodeLength+1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, ok := CodeToLookUp(&ProductUpdate{ProductCode: tc.code})
			if ok != tc.want || (ok && code != *tc.code) {
				t.Fatalf("CodeToLookUp = %q, %v; want %v", code, ok, tc.want)
			}
		})
	}
}

func TestCandidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload string
		want    bool
	}{
		{name: "An update that passes every rule but existence is a candidate", payload: `{"product_code": "NO_SUCH_CODE", "inventory_count": 5}`, want: true},
		{name: "A negative count is no candidate", payload: `{"product_code": "A-1", "inventory_count": -1}`},
		{name: "A code with a NUL is no candidate", payload: `{"product_code": "A-1\u0000", "inventory_count": 1}`},
		{name: "A blank code is no candidate", payload: `{"product_code": " ", "inventory_count": 1}`},
		{name: "A missing count is no candidate", payload: `{"product_code": "A-1"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := Decode([]byte(tc.payload))
			if err != nil {
				t.Fatal(err)
			}
			c, ok := Candidate(u)
			if ok != tc.want {
				t.Fatalf("Candidate = %+v, %v; want %v", c, ok, tc.want)
			}
			if ok && (c.Code != *u.ProductCode || c.Inventory < 0) {
				t.Fatalf("Candidate = %+v for %s", c, tc.payload)
			}
			if _, valid := NewValidator(func(string) bool { return true }).Validate(u); (valid == nil) != tc.want {
				t.Fatalf("Candidate says %v, the validator with every product existing says %v", ok, valid)
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
			checkDecodeError(t, payload, err)
			return
		}
		if _, ok := Candidate(u); ok != (validates(u)) {
			t.Fatalf("Candidate(%q) = %v, but the validator with every product existing disagrees", payload, ok)
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

// checkDecodeError fails the test unless err, Decode's error for payload, is a permanent
// InvalidPayload or UnexpectedAttributes.
func checkDecodeError(t *testing.T, payload []byte, err error) {
	t.Helper()
	switch consumer.ClassOf(err) {
	case consumer.ClassInvalidPayload, consumer.ClassUnexpectedAttributes:
	default:
		t.Fatalf("Decode(%q) error %v has class %q", payload, err, consumer.ClassOf(err))
	}
	if !consumer.IsPermanent(err) {
		t.Fatalf("Decode(%q) error %v is not permanent", payload, err)
	}
}

// validates reports whether u is valid when every product exists.
func validates(u *ProductUpdate) bool {
	_, err := NewValidator(func(string) bool { return true }).Validate(u)
	return err == nil
}
