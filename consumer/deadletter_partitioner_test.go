package consumer

import (
	"testing"

	"github.com/IBM/sarama"
)

func TestDeadLetterPartitioner(t *testing.T) {
	key := sarama.StringEncoder("product-7")
	hashed, _ := sarama.NewHashPartitioner("dlq").Partition(&sarama.ProducerMessage{Key: key}, 2)
	tests := []struct {
		name                       string
		sourcePartitions, dlqHas   int32
		messagePartition, wantSlot int32
	}{
		{"A dead-letter topic with as many partitions as the source keeps the message's partition.", 4, 4, 3, 3},
		{"A dead-letter topic with more partitions than the source keeps the message's partition.", 4, 8, 2, 2},
		{"A dead-letter topic with fewer partitions than the source goes by key hash.", 4, 2, 3, hashed},
		{"A source whose partition count is not known goes by key hash.", 0, 2, 1, hashed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newDeadLetterPartitioner(tt.sourcePartitions)("dlq")
			got, err := p.Partition(&sarama.ProducerMessage{Key: key, Partition: tt.messagePartition}, tt.dlqHas)
			if err != nil || got != tt.wantSlot {
				t.Fatalf("partition %d (%v), want %d", got, err, tt.wantSlot)
			}
			if !p.RequiresConsistency() {
				t.Fatal("a letter's partition must not depend on which partitions are writable")
			}
		})
	}
}
