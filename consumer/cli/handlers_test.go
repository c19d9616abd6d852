package cli

import (
	"slices"
	"testing"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
	"github.com/kafkasub/kafkasub/consumer"
)

// The CRD's handler enum and the handlers the consumer binary registers must name the same
// set: a name only in the enum would be accepted by the API server and then crash every
// consumer pod; a name only in the binary could never be selected.
func TestEveryHandlerTheAPIAcceptsIsRegisteredInTheBinary(t *testing.T) {
	var api []string
	for _, h := range kafkasubv1alpha1.Handlers {
		api = append(api, string(h))
		if _, ok := consumer.Lookup(string(h)); !ok {
			t.Errorf("the API accepts handler %q but the consumer binary does not register it", h)
		}
	}
	for _, name := range consumer.HandlerNames() {
		if !slices.Contains(api, name) {
			t.Errorf("the consumer registers handler %q but the CRD's enum does not accept it; add it to api/v1alpha1 and run make manifests", name)
		}
	}
}
