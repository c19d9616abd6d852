package inventory_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

// BenchmarkDecodeAndValidate: the per-message CPU cost of the strict decoder and validator.
func BenchmarkDecodeAndValidate(b *testing.B) {
	payload := []byte(`{"product_code": "P-00042", "inventory_count": 25}`)
	exists := func(string) bool { return true }
	b.ReportAllocs()
	for b.Loop() {
		u, err := inventory.Decode(payload)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := inventory.Validate(u, exists); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkCandidateAndValidateInvalid: what the service does with an update that fails
// validation (a negative count): the stateless check, then the full messages.
func BenchmarkCandidateAndValidateInvalid(b *testing.B) {
	u, err := inventory.Decode([]byte(`{"product_code": "P-00042", "inventory_count": -25}`))
	if err != nil {
		b.Fatal(err)
	}
	exists := func(string) bool { return true }
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := inventory.Candidate(u); ok {
			b.Fatal("a negative count is a candidate")
		}
		if _, err := inventory.Validate(u, exists); err == nil {
			b.Fatal("a negative count is valid")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func benchHandleBatch(b *testing.B, bk consumertest.Database) {
	db, err := consumer.OpenDatabase(bk.Driver, bk.DSN(b))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { sqlDB, _ := db.DB(); _ = sqlDB.Close() }()
	ctx := context.Background()
	if err := inventory.Migrate(ctx, db); err != nil {
		b.Fatal(err)
	}
	products := make([]inventory.Product, 1000)
	for i := range products {
		products[i] = inventory.Product{Code: fmt.Sprintf("P-%05d", i), Name: "bench"}
	}
	if err := inventory.Insert(ctx, db, products); err != nil {
		b.Fatal(err)
	}
	h := inventory.NewHandler(db)
	batch := make([]*consumer.Message, 500)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		for i := range batch {
			batch[i] = &consumer.Message{Value: fmt.Appendf(nil, `{"product_code": "P-%05d", "inventory_count": %d}`, n%1000, n)}
			n++
		}
		results, err := h.HandleBatch(ctx, db, batch)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range results {
			if r != nil {
				b.Fatal(r)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkHandleBatchSQLite / PostgreSQL: one 500-message batch of valid updates through
// the handler (decode, validate, one statement), without Kafka.
func BenchmarkHandleBatchSQLite(b *testing.B)     { benchHandleBatch(b, backends[0]) }
func BenchmarkHandleBatchPostgreSQL(b *testing.B) { benchHandleBatch(b, backends[1]) }
