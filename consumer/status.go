package consumer

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

// StatusPath is where the health address serves the consumer's Status as JSON; the operator
// polls it to fill a KafkaSubscription's status.
const StatusPath = "/status"

// StatusVersion is the version of Status's JSON. Fields are only ever added within a
// version; a removed or changed field makes a new one.
const StatusVersion = 1

// Status is what a consumer reports about itself at StatusPath: the group membership, the
// database, the assigned partitions and their lag, the outcomes since the process started
// and the last error. Nothing secret is in it (no DSN, no credentials).
type Status struct {
	Version      int    `json:"version"`
	Subscription string `json:"subscription"`
	Group        string `json:"group"`
	Topic        string `json:"topic"`
	// Joined: the consumer is a member of its group's current session.
	Joined bool `json:"joined"`
	// DatabaseUp: the database answered the last ping (false before the first).
	DatabaseUp bool `json:"databaseUp"`
	// Retrying is how many partitions wait to retry a transient failure.
	Retrying int `json:"retrying"`
	// StartedAt is when the counts began: the start of Run.
	StartedAt time.Time `json:"startedAt"`
	// Partitions are the partitions assigned to this consumer, by number.
	Partitions []PartitionStatus `json:"partitions"`
	// Lag is the sum of the partitions' known lags.
	Lag int64 `json:"lag"`
	// Messages counts outcomes since StartedAt.
	Messages MessageCounts `json:"messages"`
	// LastDeadLetterAt is when the last message was dead-lettered, if one was.
	LastDeadLetterAt *time.Time `json:"lastDeadLetterAt,omitempty"`
	// LastError is the last error on a message, permanent or transient, if there was one.
	LastError *ErrorStatus `json:"lastError,omitempty"`
	// DeadLetter is the dead-letter topic in use.
	DeadLetter DeadLetterStatus `json:"deadLetter"`
}

// PartitionStatus is one assigned partition. An offset that is not known is null.
type PartitionStatus struct {
	Partition int32 `json:"partition"`
	// Committed is the offset the consumer last marked for the group: the next one it
	// reads (Kafka commits marked offsets every second). Before the first mark it is where
	// the claim started.
	Committed *int64 `json:"committed"`
	// Stored is the offset table's value: the offset of the last message applied or
	// dead-lettered (one below Committed when both are current); null without a database
	// or before the claim read it.
	Stored *int64 `json:"stored"`
	// HighWaterMark is the offset the next record produced to the partition gets, as of
	// the consumer's last fetch.
	HighWaterMark int64 `json:"highWaterMark"`
	// Lag is HighWaterMark - Committed (null while Committed is).
	Lag *int64 `json:"lag"`
}

// MessageCounts are the outcomes since the consumer started.
type MessageCounts struct {
	// Applied: messages the handler applied (their transaction committed).
	Applied int64 `json:"applied"`
	// DeadLettered: messages written to the dead-letter topic.
	DeadLettered int64 `json:"deadLettered"`
	// Skipped: messages the error policy skipped, and messages at or below the stored
	// offset, already applied before (a redelivery after a crash or a rebalance), not
	// applied again.
	Skipped int64 `json:"skipped"`
	// Retried: retries after transient failures (one per batch and attempt).
	Retried int64 `json:"retried"`
}

// ErrorStatus is the last error on a message.
type ErrorStatus struct {
	Class     ErrorClass `json:"class"`
	Permanent bool       `json:"permanent"`
	// Message is the error's text, cut to MaxHeaderValueBytes like a dead letter's header.
	Message   string    `json:"message"`
	Time      time.Time `json:"time"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
}

// DeadLetterStatus is the dead-letter topic as the consumer found it at start.
type DeadLetterStatus struct {
	Topic string `json:"topic"`
	// Partitions is the dead-letter topic's partition count (0: not known, e.g. the topic
	// did not exist at start).
	Partitions int32 `json:"partitions"`
	// Affinity: a dead letter goes to the partition number of its message (the dead-letter
	// topic has at least as many partitions as the source); otherwise by key hash.
	Affinity bool `json:"affinity"`
	// Created: this consumer created the topic at start (deadLetter.create).
	Created bool `json:"created,omitempty"`
}

// statusBoard gathers what Status reports: counters kept by a monitor subscriber, the
// claims' offsets, the last error. Per message it costs an atomic add; the last error and
// the partitions take a mutex, on an error or a claim's start and end only.
type statusBoard struct {
	started time.Time

	applied, deadLettered, skipped, retried atomic.Int64
	lastDeadLetter                          atomic.Int64 // Unix nanoseconds; 0: none

	mu         sync.Mutex
	lastErr    *Event // the error is formatted when the status is read
	partitions map[int32]*partitionStatus
	deadLetter DeadLetterStatus
}

// partitionStatus is one claim's offsets, written by its goroutine, read by the endpoint.
type partitionStatus struct {
	partition int32
	committed atomic.Int64 // next offset to read; unknownStatusOffset: not known
	stored    atomic.Int64 // unknownStatusOffset: not known
	hwm       func() int64
}

const unknownStatusOffset int64 = -1 << 62

func newStatusBoard(deadLetterTopic string) *statusBoard {
	return &statusBoard{started: time.Now(), partitions: map[int32]*partitionStatus{},
		deadLetter: DeadLetterStatus{Topic: deadLetterTopic}}
}

// observe is the monitor subscriber.
func (b *statusBoard) observe(e Event) {
	switch e.Type {
	case EventProcessed:
		b.applied.Add(1)
	case EventDeadLettered:
		b.deadLettered.Add(1)
		b.lastDeadLetter.Store(e.Time.UnixNano())
	case EventRetrying:
		b.retried.Add(1)
	case EventSkipped:
		b.skipped.Add(1)
	case EventErrorOccurred:
		b.mu.Lock()
		b.lastErr = &e
		b.mu.Unlock()
	}
}

// claimStarted registers a claim's partition; the returned function removes it unless a
// later claim of the same partition replaced it.
func (b *statusBoard) claimStarted(partition int32, hwm func() int64) (*partitionStatus, func()) {
	ps := &partitionStatus{partition: partition, hwm: hwm}
	ps.committed.Store(unknownStatusOffset)
	ps.stored.Store(unknownStatusOffset)
	b.mu.Lock()
	b.partitions[partition] = ps
	b.mu.Unlock()
	return ps, func() {
		b.mu.Lock()
		if b.partitions[partition] == ps {
			delete(b.partitions, partition)
		}
		b.mu.Unlock()
	}
}

func (b *statusBoard) setDeadLetter(d DeadLetterStatus) {
	b.mu.Lock()
	b.deadLetter = d
	b.mu.Unlock()
}

// snapshot completes base (identity, joined, database, retrying) with what the board knows.
func (b *statusBoard) snapshot(base Status) Status {
	s := base
	s.Version = StatusVersion
	s.StartedAt = b.started
	s.Messages = MessageCounts{Applied: b.applied.Load(), DeadLettered: b.deadLettered.Load(),
		Skipped: b.skipped.Load(), Retried: b.retried.Load()}
	if ns := b.lastDeadLetter.Load(); ns != 0 {
		t := time.Unix(0, ns)
		s.LastDeadLetterAt = &t
	}
	b.mu.Lock()
	s.DeadLetter = b.deadLetter
	s.Partitions = make([]PartitionStatus, 0, len(b.partitions))
	for _, ps := range b.partitions {
		s.Partitions = append(s.Partitions, ps.status())
	}
	if e := b.lastErr; e != nil {
		msg := ""
		if e.Err != nil {
			msg = string(capHeaderValue(e.Err.Error()))
		}
		s.LastError = &ErrorStatus{Class: e.Class, Permanent: e.Permanent, Message: msg, Time: e.Time,
			Topic: e.Topic, Partition: e.Partition, Offset: e.Offset}
	}
	b.mu.Unlock()
	slices.SortFunc(s.Partitions, func(a, b PartitionStatus) int { return int(a.Partition) - int(b.Partition) })
	for _, p := range s.Partitions {
		if p.Lag != nil {
			s.Lag += *p.Lag
		}
	}
	return s
}

func (ps *partitionStatus) status() PartitionStatus {
	p := PartitionStatus{Partition: ps.partition, HighWaterMark: ps.hwm()}
	known := func(v int64) *int64 {
		if v == unknownStatusOffset {
			return nil
		}
		return &v
	}
	p.Committed = known(ps.committed.Load())
	p.Stored = known(ps.stored.Load())
	if p.Committed != nil {
		lag := max(0, p.HighWaterMark-*p.Committed)
		p.Lag = &lag
	}
	return p
}

// Status reports on the consumer: what StatusPath serves.
func (c *Consumer) Status() Status {
	return c.status.snapshot(Status{
		Subscription: c.cfg.Subscription,
		Group:        c.cfg.Kafka.ConsumerGroup,
		Topic:        c.cfg.Kafka.Topic,
		Joined:       c.joined.Load(),
		DatabaseUp:   c.dbUp.Load(),
		Retrying:     int(c.retrying.Load()),
	})
}

func (c *Consumer) serveStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(c.Status())
}

// trackClaim registers sc's partition on the status board. A claim that starts from the
// group's initial offset (no committed one) learns that offset from the broker in the
// background, so its lag is known before its first batch.
func (c *Consumer) trackClaim(sc sarama.ConsumerGroupClaim, stored int64) (*partitionStatus, func()) {
	hwm := sc.HighWaterMarkOffset
	if c.client != nil {
		hwm = newestOffset(c.client, sc.Topic(), sc.Partition(), sc.HighWaterMarkOffset)
	}
	ps, done := c.status.claimStarted(sc.Partition(), hwm)
	if stored >= 0 {
		ps.stored.Store(stored)
	}
	switch off := sc.InitialOffset(); {
	case off >= 0:
		ps.committed.Store(off)
	case off == sarama.OffsetNewest:
		ps.committed.Store(sc.HighWaterMarkOffset())
	case c.client != nil:
		client := c.client
		go func() {
			if got, err := client.GetOffset(sc.Topic(), sc.Partition(), off); err == nil {
				ps.committed.CompareAndSwap(unknownStatusOffset, got)
			}
		}()
	}
	return ps, done
}

// listedOffsetTTL is how long a high-water mark asked of the broker counts (newestOffset).
const listedOffsetTTL = 5 * time.Second

// newestOffset returns the partition's high-water mark as the later of what the claim's
// last fetch saw and what the broker answered when asked (at most every listedOffsetTTL,
// in the background, so a status request never waits for the broker). A partition paused
// for retries fetches nothing, so without asking, its lag would stay where it was when the
// database went away, however many messages arrive meanwhile.
func newestOffset(client sarama.Client, topic string, partition int32, fetched func() int64) func() int64 {
	var listed, listedAt atomic.Int64
	var listing atomic.Bool
	return func() int64 {
		if time.Since(time.Unix(0, listedAt.Load())) > listedOffsetTTL && listing.CompareAndSwap(false, true) {
			go func() {
				defer listing.Store(false)
				if off, err := client.GetOffset(topic, partition, sarama.OffsetNewest); err == nil {
					listed.Store(off)
					listedAt.Store(time.Now().UnixNano())
				}
			}()
		}
		return max(fetched(), listed.Load())
	}
}

// settled records a claim's offsets after a batch's outcome.
func (ps *partitionStatus) settled(next, stored int64) {
	ps.committed.Store(next)
	if stored >= 0 {
		ps.stored.Store(stored)
	}
}
