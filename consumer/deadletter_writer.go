package consumer

import (
	"context"
	"errors"
	"fmt"

	"github.com/IBM/sarama"
)

// deadLetterWriter writes dead letters to the dead-letter topic and waits for the
// acknowledgements.
type deadLetterWriter struct {
	p        sarama.SyncProducer
	topic    string
	maxBytes int
}

func newDeadLetterWriter(p sarama.SyncProducer, topic string, maxBytes int) *deadLetterWriter {
	return &deadLetterWriter{p: p, topic: topic, maxBytes: maxBytes}
}

// Write writes one dead letter per message and reports which were acknowledged.
func (w *deadLetterWriter) Write(ctx context.Context, msgs []*Message, letters []DeadLetter) ([]bool, error) {
	acked := make([]bool, len(msgs))
	pms := make([]*sarama.ProducerMessage, len(msgs))
	index := make(map[*sarama.ProducerMessage]int, len(msgs))
	for i, m := range msgs {
		pms[i] = deadLetterMessage(w.topic, m, letters[i])
		index[pms[i]] = i
	}
	err := w.p.SendMessages(pms)
	for i := range acked {
		acked[i] = err == nil
	}
	if err == nil {
		return acked, nil
	}
	var perrs sarama.ProducerErrors
	if errors.As(err, &perrs) {
		for i := range acked {
			acked[i] = true
		}
		for _, pe := range perrs {
			if i, ok := index[pe.Msg]; ok {
				acked[i] = false
			}
		}
	}
	return acked, Transient(ClassDeadLetterUnavailable, fmt.Errorf("write to dead-letter topic %s: %w", w.topic, err))
}
