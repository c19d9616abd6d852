package consumer

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// A consumer that cannot run writes why to its container's termination-message file
// (/dev/termination-log in a pod) before it exits non-zero, as one line
// "<Reason>: <message>", so that the kubelet shows it in the pod's status
// (state.terminated.message) and the operator can report it.
const (
	// TerminationHandlerNotRegistered: the configuration names a handler the image does
	// not register (HandlerNotRegisteredError).
	TerminationHandlerNotRegistered = "HandlerNotRegistered"
	// TerminationInvalidConfig: the configuration file or the environment is invalid.
	TerminationInvalidConfig = "InvalidConfig"
	// TerminationFailed: the consumer stopped with any other error.
	TerminationFailed = "ConsumerFailed"
)

// MaxTerminationMessage is the most the kubelet keeps of a termination message, in bytes.
const MaxTerminationMessage = 4096

// InvalidConfigError marks an error of the configuration (file or environment).
type InvalidConfigError struct{ Err error }

func (e *InvalidConfigError) Error() string { return e.Err.Error() }
func (e *InvalidConfigError) Unwrap() error { return e.Err }

// TerminationMessage returns the termination message for err: its reason, ": " and its
// text, cut to MaxTerminationMessage bytes on a UTF-8 boundary.
func TerminationMessage(err error) string {
	reason := TerminationFailed
	var notRegistered *HandlerNotRegisteredError
	var invalid *InvalidConfigError
	switch {
	case errors.As(err, &notRegistered):
		reason = TerminationHandlerNotRegistered
	case errors.As(err, &invalid):
		reason = TerminationInvalidConfig
	}
	msg := reason + ": " + err.Error()
	if len(msg) > MaxTerminationMessage {
		cut := MaxTerminationMessage
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut]
	}
	return msg
}

// ParseTerminationMessage splits a consumer's termination message into its reason and
// the rest; reason is "" when msg does not start with one of the Termination reasons
// (another program's message, or none).
func ParseTerminationMessage(msg string) (reason, message string) {
	for _, r := range []string{TerminationHandlerNotRegistered, TerminationInvalidConfig, TerminationFailed} {
		if rest, ok := strings.CutPrefix(msg, r+": "); ok {
			return r, rest
		}
	}
	return "", msg
}
