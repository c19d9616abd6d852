package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// auditPolicy logs every write with its metadata, and a status write of a subscription
// with its request (the merge patch), so a write at steady state shows what it changed.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Request
  verbs: ["update", "patch"]
  resources:
  - group: kafkasub.io
    resources: ["kafkasubscriptions/status"]
- level: Metadata
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- level: None
`

// write is one of the manager's completed write requests.
type write struct {
	at       time.Time // when the API server received it
	verb     string
	resource string // resource[/subresource]
	name     string // namespace/name
	body     json.RawMessage
}

// readWrites returns the manager's completed write requests in the audit log.
func readWrites(path string) ([]write, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []write
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e struct {
			Stage    string    `json:"stage"`
			Verb     string    `json:"verb"`
			Received time.Time `json:"requestReceivedTimestamp"`
			User     struct {
				Username string `json:"username"`
			} `json:"user"`
			ObjectRef struct {
				Resource    string `json:"resource"`
				Subresource string `json:"subresource"`
				Namespace   string `json:"namespace"`
				Name        string `json:"name"`
			} `json:"objectRef"`
			RequestObject json.RawMessage `json:"requestObject"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			continue
		}
		if e.User.Username != managerUser || (e.Stage != "ResponseComplete" && e.Stage != "Panic") {
			continue
		}
		r := e.ObjectRef.Resource
		if e.ObjectRef.Subresource != "" {
			r += "/" + e.ObjectRef.Subresource
		}
		out = append(out, write{at: e.Received, verb: e.Verb, resource: r,
			name: e.ObjectRef.Namespace + "/" + e.ObjectRef.Name, body: e.RequestObject})
	}
	return out, sc.Err()
}

// countWrites counts the manager's completed write requests in the audit log, and by
// verb and resource.
func countWrites(path string) (int, string, error) {
	ws, err := readWrites(path)
	return len(ws), byVerbResource(ws), err
}

// between returns the writes received in [from, to).
func between(ws []write, from, to time.Time) []write {
	var out []write
	for _, w := range ws {
		if !w.at.Before(from) && w.at.Before(to) {
			out = append(out, w)
		}
	}
	return out
}

// byVerbResource is "patch kafkasubscriptions/status 3, create events 1", sorted; "none"
// when there are no writes.
func byVerbResource(ws []write) string {
	by := map[string]int{}
	for _, w := range ws {
		by[w.verb+" "+w.resource]++
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, by[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
