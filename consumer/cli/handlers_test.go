package cli

import (
	"testing"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
	"github.com/kafkasub/kafkasub/consumer"
)

// Every handler the binary registers must be selectable: spec.handler accepts any name of
// the API's pattern, so a registered name outside it could never be named by a
// KafkaSubscription. (A name the binary lacks is the consumer's to report at start.)
func TestEveryRegisteredHandlerCanBeNamedBySpecHandler(t *testing.T) {
	names := consumer.HandlerNames()
	if len(names) == 0 {
		t.Fatal("the binary registers no handler")
	}
	for _, name := range names {
		if !kafkasubv1alpha1.ValidHandlerName(name) {
			t.Errorf("the consumer registers handler %q, which spec.handler cannot name: it must match %s and be at most %d bytes",
				name, kafkasubv1alpha1.HandlerNamePattern, kafkasubv1alpha1.HandlerNameMaxLength)
		}
	}
}
