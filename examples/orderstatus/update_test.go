package orderstatus

import (
	"errors"
	"strings"
	"testing"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/validation"
)

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload string
		class   consumer.ErrorClass
		message string
	}{
		{name: "A complete update decodes", payload: `{"order_id": "O-1", "status": "paid"}`},
		{name: "Missing fields decode as absent (validation says what is missing)", payload: `{}`},
		{name: "A payload that is not JSON is an invalid payload", payload: `this is no good`, class: consumer.ClassInvalidPayload, message: "invalid character 'h'"},
		{name: "A JSON array is an invalid payload", payload: `["O-1"]`, class: consumer.ClassInvalidPayload, message: "array"},
		{name: "A status that is not a string is an invalid payload", payload: `{"order_id": "O-1", "status": 2}`, class: consumer.ClassInvalidPayload, message: "number"},
		{name: "A duplicate key is an invalid payload", payload: `{"order_id": "O-1", "order_id": "O-2"}`, class: consumer.ClassInvalidPayload, message: "duplicate"},
		{name: "Invalid UTF-8 is an invalid payload", payload: "{\"order_id\": \"O-\xff\"}", class: consumer.ClassInvalidPayload, message: "UTF-8"},
		{name: "An attribute the message does not define is unexpected", payload: `{"greeting": "hello"}`, class: consumer.ClassUnexpectedAttributes, message: `"greeting"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := Decode([]byte(tc.payload))
			if tc.class == "" {
				if err != nil || u == nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			if consumer.ClassOf(err) != tc.class || !consumer.IsPermanent(err) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("Decode error %v (class %q), want a permanent %s containing %q", err, consumer.ClassOf(err), tc.class, tc.message)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	statuses := map[string]string{"O-1": "paid", "O-2": "delivered"}
	for _, tc := range []struct {
		name     string
		payload  string
		messages []string
	}{
		{name: "A known order gets a new status", payload: `{"order_id": "O-1", "status": "shipped"}`},
		{name: "A delivered order may be told it is delivered again", payload: `{"order_id": "O-2", "status": "delivered"}`},
		{name: "An unknown order does not exist", payload: `{"order_id": "O-9", "status": "paid"}`, messages: []string{"Order O-9 does not exist"}},
		{name: "A status outside the list is refused", payload: `{"order_id": "O-1", "status": "lost"}`, messages: []string{"Status is not included in the list"}},
		{name: "A delivered order's status can't change", payload: `{"order_id": "O-2", "status": "pending"}`, messages: []string{"Status can't change once the order is delivered"}},
		{name: "Every problem is collected", payload: `{"order_id": "O-9", "status": "lost"}`, messages: []string{"Order O-9 does not exist", "Status is not included in the list"}},
		{name: "Missing fields are blank", payload: `{}`, messages: []string{"Order can't be blank", "Status can't be blank"}},
		{name: "An id with a NUL is invalid and not looked up", payload: `{"order_id": "O-1\u0000", "status": "paid"}`, messages: []string{"Order is invalid"}},
		{name: "An id longer than the column is too long", payload: `{"order_id": "` + strings.Repeat("x", 65) + `", "status": "paid"}`, messages: []string{"Order is too long (maximum is 64 characters)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := Decode([]byte(tc.payload))
			if err != nil {
				t.Fatal(err)
			}
			err = Validate(u, statuses)
			if tc.messages == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var errs validation.Errors
			if !errors.As(err, &errs) || consumer.ClassOf(err) != consumer.ClassValidationFailed {
				t.Fatalf("Validate: %v, want ValidationFailed", err)
			}
			if strings.Join(errs, "|") != strings.Join(tc.messages, "|") {
				t.Fatalf("messages %q, want %q", []string(errs), tc.messages)
			}
		})
	}
}
