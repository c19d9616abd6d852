package consumer

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTerminationMessage(t *testing.T) {
	notRegistered := &HandlerNotRegisteredError{Handler: "orders.status", Registered: []string{"a.one", "b.two"}}
	for _, tc := range []struct {
		name   string
		err    error
		reason string
		text   string
	}{
		{name: "An unregistered handler names itself and every registered one", err: fmt.Errorf("start: %w", notRegistered),
			reason: TerminationHandlerNotRegistered, text: `start: handler "orders.status" is not registered in this consumer image (registered handlers: a.one, b.two)`},
		{name: "A binary without handlers says so", err: &HandlerNotRegisteredError{Handler: "x"},
			reason: TerminationHandlerNotRegistered, text: `handler "x" is not registered in this consumer image (registered handlers: none)`},
		{name: "An invalid configuration is InvalidConfig", err: &InvalidConfigError{Err: errors.New("kafka.topic: required")},
			reason: TerminationInvalidConfig, text: "kafka.topic: required"},
		{name: "Any other error is ConsumerFailed", err: errors.New("connect database: refused"),
			reason: TerminationFailed, text: "connect database: refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := TerminationMessage(tc.err)
			if want := tc.reason + ": " + tc.text; msg != want {
				t.Fatalf("TerminationMessage = %q, want %q", msg, want)
			}
			reason, text := ParseTerminationMessage(msg)
			if reason != tc.reason || text != tc.text {
				t.Fatalf("ParseTerminationMessage = %q, %q; want %q, %q", reason, text, tc.reason, tc.text)
			}
		})
	}
}

func TestATerminationMessageIsCutToWhatTheKubeletKeeps(t *testing.T) {
	msg := TerminationMessage(errors.New(strings.Repeat("é", MaxTerminationMessage)))
	if len(msg) > MaxTerminationMessage || !utf8.ValidString(msg) || !strings.HasPrefix(msg, TerminationFailed+": éé") {
		t.Fatalf("message of %d bytes (valid UTF-8 %v), want at most %d, cut on a character", len(msg), utf8.ValidString(msg), MaxTerminationMessage)
	}
}

func TestParseTerminationMessageLeavesOtherTextAlone(t *testing.T) {
	for _, msg := range []string{"", "panic: runtime error", "Error: exit status 1", "HandlerNotRegistered"} {
		if reason, text := ParseTerminationMessage(msg); reason != "" || text != msg {
			t.Errorf("ParseTerminationMessage(%q) = %q, %q; want no reason", msg, reason, text)
		}
	}
}

func TestCheckRegistered(t *testing.T) {
	Register("termination-test.registered", func(Deps) (Handler, error) { return nil, nil })
	if err := CheckRegistered("termination-test.registered"); err != nil {
		t.Fatalf("a registered handler: %v", err)
	}
	var nr *HandlerNotRegisteredError
	if err := CheckRegistered("termination-test.missing"); !errors.As(err, &nr) || nr.Handler != "termination-test.missing" || !strings.Contains(strings.Join(nr.Registered, ","), "termination-test.registered") {
		t.Fatalf("an unregistered handler: %v, want a HandlerNotRegisteredError listing the registered ones", err)
	}
}
