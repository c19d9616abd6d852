/*
Copyright 2026 The kafkasub Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package controllers

import (
	"regexp"
	"slices"
	"testing"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
	"github.com/kafkasub/kafkasub/consumer"
)

// TestErrorPolicyMatchesTheConsumer keeps the API's error policy, which cannot import the
// consumer, in step with what consumer.Config.Validate accepts: ConsumerConfig copies the
// names and actions across as they are.
func TestErrorPolicyMatchesTheConsumer(t *testing.T) {
	var api, want []string
	for _, a := range kafkasubv1alpha1.ErrorActions {
		api = append(api, string(a))
	}
	for _, a := range consumer.ErrorActions {
		want = append(want, string(a))
	}
	slices.Sort(api)
	slices.Sort(want)
	if !slices.Equal(api, want) {
		t.Errorf("API error actions %v, consumer.ErrorActions %v", api, want)
	}
	for api, c := range map[kafkasubv1alpha1.ErrorAction]consumer.ErrorAction{
		kafkasubv1alpha1.ErrorActionDeadLetter: consumer.ActionDeadLetter,
		kafkasubv1alpha1.ErrorActionRetry:      consumer.ActionRetry,
		kafkasubv1alpha1.ErrorActionSkip:       consumer.ActionSkip,
	} {
		if string(api) != string(c) {
			t.Errorf("API action %q renders as %q, want consumer action %q", api, api, c)
		}
	}

	var transient []string
	for _, c := range consumer.TransientClasses {
		transient = append(transient, string(c))
	}
	apiTransient := slices.Clone(kafkasubv1alpha1.TransientErrorClasses)
	slices.Sort(transient)
	slices.Sort(apiTransient)
	if !slices.Equal(apiTransient, transient) {
		t.Errorf("API transient classes %v, consumer.TransientClasses %v", apiTransient, transient)
	}
	if kafkasubv1alpha1.ErrorClassRetriesExhausted != string(consumer.ClassRetriesExhausted) {
		t.Errorf("API RetriesExhausted is %q, the consumer's %q", kafkasubv1alpha1.ErrorClassRetriesExhausted, consumer.ClassRetriesExhausted)
	}

	// Every class the runtime names can be named in a policy, or is refused as transient.
	pattern := regexp.MustCompile(kafkasubv1alpha1.ErrorClassPattern)
	for _, c := range []consumer.ErrorClass{
		consumer.ClassInvalidPayload, consumer.ClassUnexpectedAttributes, consumer.ClassValidationFailed,
		consumer.ClassRetriesExhausted, consumer.ClassHandlerPanic, consumer.ClassDatabaseUnavailable,
		consumer.ClassDatabaseError, consumer.ClassDeadLetterUnavailable, consumer.ClassUnclassified,
	} {
		if !pattern.MatchString(string(c)) {
			t.Errorf("consumer class %q does not match the API's ErrorClassPattern %s", c, kafkasubv1alpha1.ErrorClassPattern)
		}
	}
}
