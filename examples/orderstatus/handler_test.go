package orderstatus_test

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/examples/orderstatus"
)

// orders opens a database of b with the orders table and three orders.
func orders(t testing.TB, b consumertest.Database) *gorm.DB {
	t.Helper()
	db := consumertest.OpenDatabase(t, b.Driver, b.DSN(t))
	if err := orderstatus.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	for id, status := range map[string]string{"O-1": "pending", "O-2": "paid", "O-3": "delivered"} {
		if err := db.Create(&orderstatus.Order{ID: id, Status: status}).Error; err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func statuses(t testing.TB, db *gorm.DB) map[string]string {
	t.Helper()
	var rows []orderstatus.Order
	if err := db.Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, o := range rows {
		out[o.ID] = o.Status
	}
	return out
}

func set(id, status string) string { return fmt.Sprintf(`{"order_id": %q, "status": %q}`, id, status) }

func TestHandleBatch(t *testing.T) {
	for _, tc := range []struct {
		name     string
		payloads []string
		results  []consumer.ErrorClass // "" applied
		want     map[string]string     // changed statuses
	}{
		{name: "A valid update sets the order's status",
			payloads: []string{set("O-1", "paid")}, results: []consumer.ErrorClass{""}, want: map[string]string{"O-1": "paid"}},
		{name: "Each message gets its own outcome and only valid ones change the database",
			payloads: []string{set("O-1", "paid"), set("O-9", "paid"), `this is no good`, `{"greeting": "hello"}`, set("O-2", "lost"), set("O-2", "shipped")},
			results:  []consumer.ErrorClass{"", consumer.ClassValidationFailed, consumer.ClassInvalidPayload, consumer.ClassUnexpectedAttributes, consumer.ClassValidationFailed, ""},
			want:     map[string]string{"O-1": "paid", "O-2": "shipped"}},
		{name: "A delivered order keeps its status",
			payloads: []string{set("O-3", "pending")}, results: []consumer.ErrorClass{consumer.ClassValidationFailed}},
		{name: "An update sees the one before it in the same batch",
			payloads: []string{set("O-1", "cancelled"), set("O-1", "paid")},
			results:  []consumer.ErrorClass{"", consumer.ClassValidationFailed}, want: map[string]string{"O-1": "cancelled"}},
	} {
		for _, b := range consumertest.Databases {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				db := orders(t, b)
				before := statuses(t, db)
				msgs := make([]*consumer.Message, len(tc.payloads))
				for i, p := range tc.payloads {
					msgs[i] = &consumer.Message{Topic: "orders", Offset: int64(i), Value: []byte(p)}
				}
				h, err := factory(t)(consumer.Deps{DB: db})
				if err != nil {
					t.Fatal(err)
				}
				results, err := h.HandleBatch(context.Background(), db, msgs)
				if err != nil {
					t.Fatal(err)
				}
				for i, want := range tc.results {
					if got := consumer.ClassOf(results[i]); got != want || (want != "" && !consumer.IsPermanent(results[i])) {
						t.Errorf("message %d: %v (class %q), want class %q", i, results[i], got, want)
					}
				}
				want := maps.Clone(before)
				maps.Copy(want, tc.want)
				if got := statuses(t, db); !maps.Equal(got, want) {
					t.Errorf("statuses %v, want %v", got, want)
				}
			})
		}
	}
}

// factory returns the registered handler's factory: importing the package registered it.
func factory(t testing.TB) consumer.HandlerFactory {
	t.Helper()
	f, ok := consumer.Lookup(orderstatus.HandlerName)
	if !ok {
		t.Fatalf("%s is not registered (registered: %v)", orderstatus.HandlerName, consumer.HandlerNames())
	}
	return f
}
