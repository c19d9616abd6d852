package consumer

import (
	"sync"
	"time"
)

// EventType names an event on the Monitor.
type EventType string

// Event types. Subscribe to them like Karafka's `monitor.subscribe 'error.occurred'`.
const (
	// EventProcessed: a message was applied (its offset is marked).
	EventProcessed EventType = "message.processed"
	// EventDeadLettered: a message was written to the dead-letter topic (its offset is marked).
	EventDeadLettered EventType = "message.dead_lettered"
	// EventSkipped: a message's permanent error has the error policy skip: its offset is
	// marked without a dead letter. Err and Class say why.
	EventSkipped EventType = "message.skipped"
	// EventRetrying: a batch failed transiently and will be retried after Backoff.
	EventRetrying EventType = "message.retrying"
	// EventErrorOccurred: any error on a message, permanent or transient, before the
	// runtime acts on it. Err and Class are set.
	EventErrorOccurred EventType = "error.occurred"
	// EventDatabaseStatus: the database went up or down (DatabaseUp says which).
	EventDatabaseStatus EventType = "database.status"
	// EventGroupJoined / EventGroupLeft: the consumer joined or left a group session.
	EventGroupJoined EventType = "group.joined"
	EventGroupLeft   EventType = "group.left"
)

// Event is one thing that happened in the pipeline. Fields that do not apply are zero.
type Event struct {
	Type         EventType
	Time         time.Time
	Subscription string
	Group        string
	// Coordinates of the message (for message events).
	Topic     string
	Partition int32
	Offset    int64
	// Err and Class describe a failure (EventErrorOccurred, EventRetrying, EventDeadLettered).
	Err   error
	Class ErrorClass
	// Permanent is true when Err is permanent.
	Permanent bool
	// Attempt is the 1-based attempt that produced the event.
	Attempt int
	// Backoff is the wait before the next attempt (EventRetrying).
	Backoff time.Duration
	// Latency is from the start of the first attempt to the outcome (EventProcessed,
	// EventDeadLettered).
	Latency time.Duration
	// DatabaseUp is the new database state (EventDatabaseStatus).
	DatabaseUp bool
	// Claims lists the assigned partitions by topic (EventGroupJoined).
	Claims map[string][]int32
}

// Subscriber receives events. It runs synchronously on the pipeline's goroutine, so it
// must be quick and must not block; hand slow work to a goroutine of its own.
type Subscriber func(Event)

// Monitor fans events out to subscribers. The zero value is ready; it is safe for
// concurrent use.
type Monitor struct {
	mu     sync.RWMutex
	nextID int
	subs   map[int]subscription
}

type subscription struct {
	types map[EventType]bool // nil: every type
	fn    Subscriber
}

// NewMonitor returns an empty monitor.
func NewMonitor() *Monitor { return &Monitor{} }

// Subscribe calls fn for every event of the given types, or of every type when none is
// given. The returned function unsubscribes.
func (m *Monitor) Subscribe(fn Subscriber, types ...EventType) (unsubscribe func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.subs == nil {
		m.subs = map[int]subscription{}
	}
	s := subscription{fn: fn}
	if len(types) > 0 {
		s.types = map[EventType]bool{}
		for _, t := range types {
			s.types[t] = true
		}
	}
	id := m.nextID
	m.nextID++
	m.subs[id] = s
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.subs, id)
	}
}

// Publish delivers e to every matching subscriber. A zero e.Time is set to now.
func (m *Monitor) Publish(e Event) {
	if m == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, s := range m.subs {
		if s.types == nil || s.types[e.Type] {
			s.fn(e)
		}
	}
}
