package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
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
// messages of one partition, in offset order, as a batch.
//
// HandleBatch returns either a batch error or one result per message:
//   - err != nil: nothing in the batch can be trusted as done; the runtime retries the whole
//     batch with backoff (a PermanentError here dead-letters the whole batch, so prefer
//     per-message results for permanent problems). Delivery is at least once: a handler must
//     tolerate seeing a message again (the inventory handler sets, it never adds).
//   - err == nil: results has len(msgs) entries; results[i] is nil when msgs[i] is durably
//     applied, a PermanentError when msgs[i] must go to the dead-letter topic. A result that
//     is not permanent is treated as a transient batch error.
//
// The runtime marks the offsets only after HandleBatch returned and every dead-letter
// write was acknowledged.
type Handler interface {
	HandleBatch(ctx context.Context, msgs []*Message) (results []error, err error)
}

// HandlerFunc adapts a one-message function to Handler: messages are handled one after
// the other; the first transient error stops the batch and is returned as the batch error.
type HandlerFunc func(ctx context.Context, msg *Message) error

// HandleBatch implements Handler.
func (f HandlerFunc) HandleBatch(ctx context.Context, msgs []*Message) ([]error, error) {
	results := make([]error, len(msgs))
	for i, m := range msgs {
		err := f(ctx, m)
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
