package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// statusChanges follows the subscriptions' statuses from one list to the next and keeps
// which fields changed: what a status write at steady state was for.
type statusChanges struct {
	prev     map[string]map[string]string // namespace/name -> field path -> JSON value
	changed  int                          // subscriptions seen changed, once per list
	fields   map[string]int               // field path (without the subscription) -> times changed
	examples []string
}

const maxChangeExamples = 8

// observe lists the subscriptions and records what changed since the last list; the first
// list only remembers.
func (sc *statusChanges) observe(ctx context.Context, c client.Client) error {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(ksubGVK.GroupVersion().WithKind("KafkaSubscriptionList"))
	if err := c.List(ctx, list); err != nil {
		return err
	}
	first := sc.prev == nil
	if first {
		sc.prev, sc.fields = map[string]map[string]string{}, map[string]int{}
	}
	for _, k := range list.Items {
		key := k.GetNamespace() + "/" + k.GetName()
		now := map[string]string{}
		flatten("status", k.Object["status"], now)
		old, seen := sc.prev[key]
		sc.prev[key] = now
		if first || !seen {
			continue
		}
		var diff []string
		for path, v := range now {
			if old[path] != v {
				diff = append(diff, path)
			}
		}
		for path := range old {
			if _, ok := now[path]; !ok {
				diff = append(diff, path)
			}
		}
		if len(diff) == 0 {
			continue
		}
		sort.Strings(diff)
		sc.changed++
		for _, path := range diff {
			sc.fields[path]++
			if len(sc.examples) < maxChangeExamples {
				sc.examples = append(sc.examples, fmt.Sprintf("%s %s: %s -> %s", key, path, orNone(old[path]), orNone(now[path])))
			}
		}
	}
	return nil
}

// summary is "status.lag.total 12, ..." by how often each field changed.
func (sc *statusChanges) summary() string {
	paths := make([]string, 0, len(sc.fields))
	for p := range sc.fields {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool {
		if sc.fields[paths[i]] != sc.fields[paths[j]] {
			return sc.fields[paths[i]] > sc.fields[paths[j]]
		}
		return paths[i] < paths[j]
	})
	parts := make([]string, len(paths))
	for i, p := range paths {
		parts[i] = fmt.Sprintf("%s %d", p, sc.fields[p])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func orNone(v string) string {
	if v == "" {
		return "(absent)"
	}
	return v
}

// flatten records every leaf of v under its path. List items are named by their "type"
// (conditions) or "partition" (lag partitions) when they have one, so a reordered list
// shows as what moved.
func flatten(path string, v any, out map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			flatten(path+"."+k, e, out)
		}
	case []any:
		names := make([]string, len(t))
		for i, e := range t {
			names[i] = fmt.Sprint(i)
			if m, ok := e.(map[string]any); ok {
				if id, ok := m["type"]; ok {
					names[i] = fmt.Sprintf("type=%v", id)
				} else if id, ok := m["partition"]; ok {
					names[i] = fmt.Sprintf("partition=%v", id)
				}
			}
			flatten(fmt.Sprintf("%s[%s]", path, names[i]), e, out)
		}
		out[path+"[order]"] = "[" + strings.Join(names, " ") + "]"
	default:
		b, _ := json.Marshal(t)
		out[path] = string(b)
	}
}
