package inventory

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kafkasub/kafkasub/consumer"
)

func TestDecode(t *testing.T) {
	mib := strings.Repeat("K", 1<<20)
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
		{name: "Whitespace around the object is allowed", payload: " \t\r\n{\"product_code\":\"A\"}\n", code: "A"},
		{name: "An escaped key names the same attribute", payload: `{"product\u005fcode": "A"}`, code: "A"},

		{name: "A payload that is not JSON is an invalid payload", payload: `this is no good`, class: consumer.ClassInvalidPayload, message: "payload is not a JSON object: invalid character 'h' in literal true (expecting 'r') at byte 1"},
		{name: "An empty payload is an invalid payload", payload: ``, class: consumer.ClassInvalidPayload, message: "payload is not a JSON object: the payload is empty"},
		{name: "A payload of whitespace only is an invalid payload", payload: " \t\r\n", class: consumer.ClassInvalidPayload, message: "payload is not a JSON object: the payload is only whitespace"},
		{name: "A byte order mark before the object is an invalid payload", payload: "\ufeff{\"product_code\": \"A\"}", class: consumer.ClassInvalidPayload, message: "payload is not a JSON object: it starts with a byte order mark (U+FEFF)"},
		{name: "A JSON array is an invalid payload", payload: `[1, 2]`, class: consumer.ClassInvalidPayload, message: "payload is not a JSON object: a JSON array"},
		{name: "An empty JSON array is an invalid payload", payload: `[]`, class: consumer.ClassInvalidPayload, message: "payload is not a JSON object: a JSON array"},
		{name: "JSON null is an invalid payload", payload: `null`, class: consumer.ClassInvalidPayload, message: "payload is not a JSON object: null"},
		{name: "A JSON string is an invalid payload", payload: `"A-1"`, class: consumer.ClassInvalidPayload, message: "payload is not a JSON object: a JSON string"},
		{name: "A JSON number is an invalid payload", payload: `25`, class: consumer.ClassInvalidPayload, message: "payload is not a JSON object: a JSON number"},
		{name: "A broken value that is not an object says what is broken", payload: `[1,`, class: consumer.ClassInvalidPayload, message: "payload is not a JSON object: unexpected end of JSON input"},
		{name: "An unterminated object is an invalid payload", payload: `{"product_code": "A"`, class: consumer.ClassInvalidPayload, message: "payload is not a JSON object: unexpected end of JSON input"},
		{name: "Data after the object is an invalid payload", payload: `{"product_code": "A"} {}`, class: consumer.ClassInvalidPayload, message: "payload is not a JSON object: invalid character '{' after top-level value at byte 22"},
		{name: "A stray brace after the object is an invalid payload", payload: `{"product_code": "A"}}`, class: consumer.ClassInvalidPayload, message: "payload is not a JSON object: invalid character '}' after top-level value at byte 21"},
		{name: "A NUL byte after the object is an invalid payload", payload: "{}\x00", class: consumer.ClassInvalidPayload, message: `payload is not a JSON object: invalid character '\x00' after top-level value at byte 2`},
		{name: "Data after a value that is not an object is an invalid payload", payload: `[] []`, class: consumer.ClassInvalidPayload, message: "payload is not a JSON object: invalid character '[' after top-level value at byte 3"},

		{name: "A duplicate product code is an invalid payload naming the key", payload: `{"product_code":"A","product_code":"B","inventory_count":1}`, class: consumer.ClassInvalidPayload, message: `payload is not a JSON object: duplicate key "product_code" at byte 20`},
		{name: "A duplicate inventory count is an invalid payload naming the key", payload: `{"inventory_count":1,"product_code":"A","inventory_count":2}`, class: consumer.ClassInvalidPayload, message: `payload is not a JSON object: duplicate key "inventory_count" at byte 40`},
		{name: "A duplicate key spelled with an escape is still a duplicate", payload: `{"product_code":"A","product\u005fcode":"B"}`, class: consumer.ClassInvalidPayload, message: `payload is not a JSON object: duplicate key "product_code" at byte 20`},
		{name: "A duplicate unexpected attribute is an invalid payload", payload: `{"greeting":1,"greeting":2}`, class: consumer.ClassInvalidPayload, message: `payload is not a JSON object: duplicate key "greeting" at byte 14`},
		{name: "A duplicate key inside an attribute's value names where it is", payload: `{"x":{"a":1,"a":2}}`, class: consumer.ClassInvalidPayload, message: `payload is not a JSON object: duplicate key "a" in "/x" at byte 12`},

		{name: "Invalid UTF-8 in the product code is an invalid payload", payload: "{\"product_code\":\"\xff\"}", class: consumer.ClassInvalidPayload, message: "payload is not a JSON object: invalid UTF-8 at byte 17"},
		{name: "An overlong UTF-8 encoding is an invalid payload", payload: "{\"product_code\":\"A\xc0\xaf\"}", class: consumer.ClassInvalidPayload, message: "payload is not a JSON object: invalid UTF-8 at byte 18"},
		{name: "A truncated UTF-8 sequence is an invalid payload", payload: "{\"product_code\":\"\xe2\x82\"}", class: consumer.ClassInvalidPayload, message: "payload is not a JSON object: invalid UTF-8 at byte 17"},
		{name: "Invalid UTF-8 in a key is an invalid payload", payload: "{\"\xff\":1}", class: consumer.ClassInvalidPayload, message: "payload is not a JSON object: invalid UTF-8 at byte 2"},
		{name: "A lone high surrogate escape is an invalid payload", payload: `{"product_code":"\ud800"}`, class: consumer.ClassInvalidPayload, message: `payload is not a JSON object: unpaired surrogate escape \ud800 in "/product_code" at byte 17`},
		{name: "A lone low surrogate escape is an invalid payload", payload: `{"product_code":"AB\udc00"}`, class: consumer.ClassInvalidPayload, message: `payload is not a JSON object: unpaired surrogate escape \udc00 in "/product_code" at byte 19`},
		{name: "A high surrogate before a non-surrogate is an invalid payload", payload: `{"product_code":"\ud800\u0041"}`, class: consumer.ClassInvalidPayload, message: `payload is not a JSON object: unpaired surrogate escape \ud800 in "/product_code" at byte 17`},
		{name: "A surrogate escape in a key is an invalid payload", payload: `{"\ud800":1}`, class: consumer.ClassInvalidPayload, message: `payload is not a JSON object: unpaired surrogate escape \ud800 at byte 2`},
		{name: "A raw control character in a string is an invalid payload", payload: "{\"product_code\":\"A\nB\"}", class: consumer.ClassInvalidPayload, message: `payload is not a JSON object: invalid character '\n' in string (expecting non-control character) in "/product_code" at byte 18`},

		{name: "An unexpected attribute is named", payload: `{"greeting": "hello"}`, class: consumer.ClassUnexpectedAttributes, message: "unexpected attributes: greeting"},
		{name: "Every unexpected attribute is named, sorted", payload: `{"product_code": "A", "zeta": 1, "alpha": 2}`, class: consumer.ClassUnexpectedAttributes, message: "unexpected attributes: alpha, zeta"},
		{name: "Unexpected attributes are reported before a field of the wrong type", payload: `{"product_code": 12, "zeta": 1}`, class: consumer.ClassUnexpectedAttributes, message: "unexpected attributes: zeta"},
		{name: "A product code that is not a string names the field", payload: `{"product_code": 12, "inventory_count": 1}`, class: consumer.ClassInvalidPayload, message: "product_code must be a string, got number"},
		{name: "A product code that is an object names the field", payload: `{"product_code": {"a": 1}}`, class: consumer.ClassInvalidPayload, message: "product_code must be a string, got object"},
		{name: "An inventory count that is a string names the field", payload: `{"product_code": "A", "inventory_count": "5"}`, class: consumer.ClassInvalidPayload, message: "inventory_count must be a number, got string"},
		{name: "An inventory count that is a boolean names the field", payload: `{"product_code": "A", "inventory_count": true}`, class: consumer.ClassInvalidPayload, message: "inventory_count must be a number, got boolean"},
		{name: "An inventory count that is an array names the field", payload: `{"product_code": "A", "inventory_count": [1]}`, class: consumer.ClassInvalidPayload, message: "inventory_count must be a number, got array"},
		{name: "A malformed number is an invalid payload", payload: `{"inventory_count": 01}`, class: consumer.ClassInvalidPayload, message: "payload is not a JSON object: invalid character '1' after object value (expecting ',' or '}') at byte 21"},

		// Counts decode as their literal; whether it is an integer in range is Validate's
		// business (see TestValidate).
		{name: "A fractional count decodes (the validator rejects it)", payload: `{"product_code": "A", "inventory_count": 2.5}`, code: "A", count: "2.5"},
		{name: "A count with a zero fraction decodes verbatim", payload: `{"product_code": "A", "inventory_count": 25.0}`, code: "A", count: "25.0"},
		{name: "A count with an exponent decodes verbatim", payload: `{"product_code": "A", "inventory_count": 1e3}`, code: "A", count: "1e3"},
		{name: "Negative zero decodes verbatim", payload: `{"product_code": "A", "inventory_count": -0}`, code: "A", count: "-0"},
		{name: "A count of 2^63 decodes verbatim", payload: `{"product_code": "A", "inventory_count": 9223372036854775808}`, code: "A", count: "9223372036854775808"},

		// Product codes are kept byte for byte; ValidCodeFormat judges them.
		{name: "A NUL escape in the product code is kept verbatim", payload: `{"product_code": "KB-MECH-001\u0000", "inventory_count": 1}`, code: "KB-MECH-001\x00", count: "1"},
		{name: "Every C0 control escape in the product code is kept verbatim", payload: `{"product_code": "\u0001\t\n\r\b\f\u001f"}`, code: "\x01\t\n\r\b\f\x1f"},
		{name: "DEL, raw or escaped, is kept verbatim", payload: "{\"product_code\": \"A\x7f\\u007f\"}", code: "A\x7f\x7f"},
		{name: "Line and paragraph separators, raw or escaped, are kept verbatim", payload: "{\"product_code\": \"\u2028\\u2028\u2029\\u2029\"}", code: "\u2028\u2028\u2029\u2029"},
		{name: "Spaces around the product code are kept", payload: `{"product_code": " A-1 "}`, code: " A-1 "},
		{name: "A surrogate pair decodes to its character", payload: `{"product_code": "\ud83d\ude00"}`, code: "\U0001F600"},
		{name: "A 1 MiB product code decodes (its length is the validator's business)", payload: `{"product_code": "` + mib + `", "inventory_count": 1}`, code: mib, count: "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := Decode([]byte(tc.payload))
			if tc.class != "" {
				if err == nil {
					t.Fatalf("Decode(%.80q) = %+v, want a %s error", tc.payload, u, tc.class)
				}
				if !consumer.IsPermanent(err) || consumer.ClassOf(err) != tc.class {
					t.Fatalf("Decode(%.80q) error %v has class %q (permanent %v), want permanent %s", tc.payload, err, consumer.ClassOf(err), consumer.IsPermanent(err), tc.class)
				}
				if !strings.Contains(err.Error(), tc.message) {
					t.Fatalf("Decode(%.80q) error %q, want it to contain %q", tc.payload, err, tc.message)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode(%.80q): %v", tc.payload, err)
			}
			if got := deref(u.ProductCode); got != tc.code {
				t.Errorf("product code %.80q, want %.80q", got, tc.code)
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
