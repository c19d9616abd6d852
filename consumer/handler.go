package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
)

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Message is one Kafka record as a handler sees it.
type Message struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
	Timestamp time.Time
}

// Handler is the business code of a subscription. The runtime hands it consecutive
// messages of one partition, in offset order, as a batch, with the database transaction
// the batch's outcome is committed in.
//
// The transaction: tx is open on the subscription's database (nil when the handler was
// registered without one). Write through tx only, and do not commit or roll it back: the
// runtime commits it after it has advanced the partition's stored offset in the same
// transaction (and had every dead letter of the batch acknowledged), so a batch is applied
// exactly once even when a member is frozen and resumes, two members race on a partition
// or the process is killed between the write and the offset commit.
//
// HandleBatch returns either a batch error or one result per message:
//   - err == nil: results has len(msgs) entries; results[i] is nil when msgs[i] is applied,
//     a PermanentError when msgs[i] can never be (it goes to the dead-letter topic). A
//     message with a permanent result must not have changed the database; the runtime makes
//     sure of it by rolling the batch back and calling HandleBatch again without it.
//   - a transient err (TransientError, or any error that is not permanent): the runtime
//     rolls back, pauses the partition and retries the batch with backoff.
//   - a permanent err: the runtime rolls back and narrows the batch down (halves, down to
//     single messages) until the message that causes it is found; only that one is
//     dead-lettered. A panic is treated the same way, with class HandlerPanic.
//
// ctx ends when the handler timeout passes or the consumer's group session ends; the
// transaction is then rolled back and the messages come again.
type Handler interface {
	HandleBatch(ctx context.Context, tx *gorm.DB, msgs []*Message) (results []error, err error)
}

// HandlerFunc adapts a one-message function to Handler: messages are handled one after
// the other in the batch's transaction; the first error that is not permanent stops the
// batch and is returned as the batch error.
type HandlerFunc func(ctx context.Context, tx *gorm.DB, msg *Message) error

// HandleBatch implements Handler.
func (f HandlerFunc) HandleBatch(ctx context.Context, tx *gorm.DB, msgs []*Message) ([]error, error) {
	results := make([]error, len(msgs))
	for i, m := range msgs {
		err := f(ctx, tx, m)
		if err != nil && !IsPermanent(err) {
			return nil, err
		}
		results[i] = err
	}
	return results, nil
}

// Migrator is implemented by handlers that own database tables; the runtime calls Migrate
// on start when database.migrate is true.
type Migrator interface {
	Migrate(ctx context.Context) error
}

// Deps is what a handler factory gets to build a handler.
type Deps struct {
	// DB is the subscription's database (nil if the handler declared it needs none).
	DB *gorm.DB
	// Config is the consumer configuration (secrets included; never log it).
	Config *Config
	// Logger is the consumer's structured logger.
	Logger *slog.Logger
}

// HandlerFactory builds a handler for one consumer.
type HandlerFactory func(deps Deps) (Handler, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]HandlerFactory{}
)

// Register makes a handler available under name (e.g. "inventory.product-updates"); a
// subscription's handler field selects it. Register panics on an empty or duplicate name,
// so it belongs in an init function of the handler's package.
func Register(name string, factory HandlerFactory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if name == "" || factory == nil {
		panic("consumer: Register needs a name and a factory")
	}
	if _, dup := registry[name]; dup {
		panic(fmt.Sprintf("consumer: handler %q registered twice", name))
	}
	registry[name] = factory
}

// Lookup returns the factory registered under name.
func Lookup(name string) (HandlerFactory, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	f, ok := registry[name]
	return f, ok
}

// HandlerNotRegisteredError is the error of a configuration that names a handler this
// binary does not register: the image was built without the handler's package.
type HandlerNotRegisteredError struct {
	Handler    string
	Registered []string // sorted
}

func (e *HandlerNotRegisteredError) Error() string {
	registered := "none"
	if len(e.Registered) > 0 {
		registered = strings.Join(e.Registered, ", ")
	}
	return fmt.Sprintf("handler %q is not registered in this consumer image (registered handlers: %s)", e.Handler, registered)
}

// CheckRegistered returns a *HandlerNotRegisteredError unless a handler is registered
// under name.
func CheckRegistered(name string) error {
	if _, ok := Lookup(name); ok {
		return nil
	}
	return &HandlerNotRegisteredError{Handler: name, Registered: HandlerNames()}
}

// HandlerNames returns the registered handler names, sorted.
func HandlerNames() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
