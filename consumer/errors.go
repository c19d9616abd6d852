package consumer

import (
	"errors"
	"fmt"
	"slices"
)

// ErrorClass names why a message failed. It is written into the dead-letter header
// HeaderErrorClass, into monitor events, metrics labels and Sentry tags.
type ErrorClass string

// Error classes of the pipeline. Handlers may define their own; these are the ones the
// runtime and the inventory domain use.
const (
	// ClassInvalidPayload: the payload is not JSON, or a field has the wrong type (permanent).
	ClassInvalidPayload ErrorClass = "InvalidPayload"
	// ClassUnexpectedAttributes: the payload has attributes the message does not define (permanent).
	ClassUnexpectedAttributes ErrorClass = "UnexpectedAttributes"
	// ClassValidationFailed: the message decoded but broke a business rule (permanent).
	ClassValidationFailed ErrorClass = "ValidationFailed"
	// ClassRetriesExhausted: a transient error persisted for retry.maxAttempts attempts.
	ClassRetriesExhausted ErrorClass = "RetriesExhausted"
	// ClassHandlerPanic: the handler panicked on the message (permanent).
	ClassHandlerPanic ErrorClass = "HandlerPanic"
	// ClassDatabaseUnavailable: the database could not be reached or timed out (transient).
	ClassDatabaseUnavailable ErrorClass = "DatabaseUnavailable"
	// ClassDatabaseError: the database rejected a statement (permanent).
	ClassDatabaseError ErrorClass = "DatabaseError"
	// ClassDeadLetterUnavailable: the dead-letter topic did not acknowledge a write (transient).
	ClassDeadLetterUnavailable ErrorClass = "DeadLetterUnavailable"
	// ClassUnclassified: a handler returned an error that is neither permanent nor
	// transient; the runtime treats it as transient so nothing is lost.
	ClassUnclassified ErrorClass = "Unclassified"
)

// TransientClasses are the runtime's classes of errors that may go away; an error policy
// cannot change what happens to them (they are retried).
var TransientClasses = []ErrorClass{ClassDatabaseUnavailable, ClassDeadLetterUnavailable, ClassUnclassified}

// ErrorAction is what the runtime does with a message whose permanent error has a class
// (Config.ErrorPolicy).
type ErrorAction string

// Error actions.
const (
	// ActionDeadLetter writes the message to the dead-letter topic (the default).
	ActionDeadLetter ErrorAction = "deadLetter"
	// ActionRetry retries the message with the subscription's backoff, up to
	// retry.maxAttempts; then it is RetriesExhausted.
	ActionRetry ErrorAction = "retry"
	// ActionSkip commits the message without a dead letter; an event, a metric and a log
	// line say so.
	ActionSkip ErrorAction = "skip"
)

// ErrorActions lists the actions an error policy may name.
var ErrorActions = []ErrorAction{ActionDeadLetter, ActionRetry, ActionSkip}

// sortedClasses returns the classes of a policy in order, for stable messages.
func sortedClasses(p map[ErrorClass]ErrorAction) []ErrorClass {
	out := make([]ErrorClass, 0, len(p))
	for c := range p {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// PermanentError is an error that retrying cannot fix: the message goes to the dead-letter
// topic at once with its Class.
type PermanentError struct {
	Class ErrorClass
	Err   error
}

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// TransientError is an error that may go away (a database or broker outage): the runtime
// pauses the partition and retries with backoff, and never commits the message's offset.
type TransientError struct {
	Class ErrorClass
	Err   error
}

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// Permanent marks err as permanent with class. It returns nil for a nil err.
func Permanent(class ErrorClass, err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Class: class, Err: err}
}

// Permanentf is Permanent with a formatted message.
func Permanentf(class ErrorClass, format string, args ...any) error {
	return &PermanentError{Class: class, Err: fmt.Errorf(format, args...)}
}

// Transient marks err as transient with class. It returns nil for a nil err.
func Transient(class ErrorClass, err error) error {
	if err == nil {
		return nil
	}
	return &TransientError{Class: class, Err: err}
}

// IsPermanent reports whether err (or an error it wraps) is a PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// IsTransient reports whether err would be retried: any non-nil error that is not permanent.
func IsTransient(err error) bool { return err != nil && !IsPermanent(err) }

// ClassOf returns the class of err: the class of the outermost PermanentError or
// TransientError it wraps, ClassUnclassified for any other error, "" for nil.
func ClassOf(err error) ErrorClass {
	if err == nil {
		return ""
	}
	for e := err; e != nil; {
		switch t := e.(type) {
		case *PermanentError:
			return t.Class
		case *TransientError:
			return t.Class
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	var p *PermanentError
	if errors.As(err, &p) {
		return p.Class
	}
	var t *TransientError
	if errors.As(err, &t) {
		return t.Class
	}
	return ClassUnclassified
}
