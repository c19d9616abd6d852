package charts

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
	"github.com/kafkasub/kafkasub/controllers"
)

// TestConsumerServiceMonitorSelectsTheOperatorsServices builds the children of the sample
// KafkaSubscription with the operator's own builder and checks that the chart's consumer
// ServiceMonitor selects their metrics Service, scrapes a port it has, and copies a label
// it carries.
func TestConsumerServiceMonitorSelectsTheOperatorsServices(t *testing.T) {
	var ksub kafkasubv1alpha1.KafkaSubscription
	var found bool
	for _, o := range decodeFile(t, "config/samples/kafkasub_v1alpha1_kafkasubscription.yaml") {
		if o.GetKind() == "KafkaSubscription" {
			toTyped(t, o, &ksub)
			found = true
		}
	}
	if !found {
		t.Fatal("no KafkaSubscription in the sample")
	}
	ksub.Namespace = "shop"
	desired, err := controllers.BuildDesired(&ksub, controllers.BuildOptions{ConsumerImage: "kafkasub:test"})
	if err != nil {
		t.Fatal(err)
	}
	svc := desired.Service

	for name, values := range map[string]map[string]any{
		"all namespaces":     {"consumerServiceMonitor": map[string]any{"enabled": true}},
		"watched namespaces": {"consumerServiceMonitor": map[string]any{"enabled": true}, "watchNamespaces": []any{"shop"}},
		"operator one too":   {"consumerServiceMonitor": map[string]any{"enabled": true}, "metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}}},
	} {
		t.Run(name, func(t *testing.T) {
			r := mustRender(t, values)
			sm := r.must(t, "ServiceMonitor", releaseName+"-consumers")
			sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
			if len(sel) == 0 {
				t.Fatal("the consumer ServiceMonitor selects nothing")
			}
			for k, v := range sel {
				if svc.Labels[k] != v {
					t.Errorf("it selects %s=%s; the operator's metrics Service has %v", k, v, svc.Labels)
				}
			}
			if anyNS, _, _ := unstructured.NestedBool(sm.Object, "spec", "namespaceSelector", "any"); !anyNS {
				names, _, _ := unstructured.NestedStringSlice(sm.Object, "spec", "namespaceSelector", "matchNames")
				if len(names) != 1 || names[0] != ksub.Namespace {
					t.Errorf("namespaceSelector %v misses %s", sm.Object["spec"].(map[string]any)["namespaceSelector"], ksub.Namespace)
				}
			}
			eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
			for _, ep := range eps {
				port := ep.(map[string]any)["port"]
				var ok bool
				for _, p := range svc.Spec.Ports {
					ok = ok || p.Name == port
				}
				if !ok {
					t.Errorf("it scrapes port %v; the Service has %+v", port, svc.Spec.Ports)
				}
			}
			labels, _, _ := unstructured.NestedStringSlice(sm.Object, "spec", "targetLabels")
			for _, l := range labels {
				if _, ok := svc.Labels[l]; !ok {
					t.Errorf("targetLabel %s is not a label of the Service %v", l, svc.Labels)
				}
			}
		})
	}
	if r := mustRender(t, nil); r.kinds()["ServiceMonitor"] != 0 {
		t.Error("ServiceMonitors are rendered by default")
	}
}
