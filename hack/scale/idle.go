package main

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// measureIdle makes every consumer pod run with a fake status endpoint (kubelet), waits
// until every subscription shows what its pods report and the manager has been quiet for a
// poll round, then counts for o.window the manager's writes, the status fields they
// changed and the /status requests the pods answered.
func measureIdle(ctx context.Context, c client.Client, auditLog string, n, replicas int, settle time.Duration, o idleOptions, mgrPid int) error {
	k := newKubelet(c, o.shape)
	kctx, stop := context.WithCancel(ctx)
	defer k.stop()
	defer stop()
	pods := n * replicas
	shape := fmt.Sprintf("%d per subscription, %d partitions per subscription, lag %d per partition", replicas, o.shape.partitions, o.shape.lag)
	if o.shape.jitter > 0 {
		shape += fmt.Sprintf(" moving up to +%d on every answer (RoundLag rounds up to +%d away)", o.shape.jitter, maxJitter(o.shape.lag, o.shape.partitions))
	}
	log("playing the kubelet for %d consumer pods (%s)", pods, shape)
	t0 := time.Now()
	go k.run(kctx)

	for next := time.Now(); ; time.Sleep(time.Second) {
		got, err := k.started()
		if got >= pods {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("only %d of %d consumer pods run after %s (last error: %v)", got, pods, time.Since(t0).Round(time.Second), err)
		}
		if time.Now().After(next) {
			log("%6.1fs  %d of %d consumer pods run (last error: %v)", time.Since(t0).Seconds(), got, pods, err)
			next = time.Now().Add(5 * time.Second)
		}
	}
	running := time.Since(t0)
	log("all %d consumer pods run, %.1fs after the kubelet started", pods, running.Seconds())

	for next := time.Now(); ; time.Sleep(time.Second) {
		done, err := reportedCount(ctx, c)
		if err != nil {
			return err
		}
		if done == n {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("only %d of %d subscriptions show their pods' reports after %s", done, n, time.Since(t0).Round(time.Second))
		}
		if time.Now().After(next) {
			log("%6.1fs  %d of %d subscriptions show their pods' reports", time.Since(t0).Seconds(), done, n)
			next = time.Now().Add(5 * time.Second)
		}
	}
	reported := time.Since(t0)
	log("every subscription shows its pods' reports, %.1fs after the kubelet started", reported.Seconds())

	// Readiness reaches the Deployments' status a little later than the reports: wait until
	// a whole poll round has passed without a write, but not forever, since a write at
	// steady state is what this measures.
	quietFor := max(settle, o.pollInterval+5*time.Second)
	giveUp := time.Now().Add(max(2*time.Minute, 6*o.pollInterval))
	count, _, err := countWrites(auditLog)
	if err != nil {
		return err
	}
	last, quiet := time.Now(), false
	for ctx.Err() == nil && time.Now().Before(giveUp) {
		time.Sleep(time.Second)
		now, _, err := countWrites(auditLog)
		if err != nil {
			return err
		}
		if now != count {
			count, last = now, time.Now()
		}
		if time.Since(last) >= quietFor {
			quiet = true
			break
		}
	}
	if quiet {
		log("the manager wrote nothing for %s; the idle window starts", quietFor)
	} else {
		log("the manager did not stop writing for %s within %s; the idle window starts anyway", quietFor, time.Since(t0).Round(time.Second))
	}

	sc := &statusChanges{}
	if err := sc.observe(ctx, c); err != nil {
		return err
	}
	wStart := time.Now()
	before := k.requests()
	wEnd := wStart.Add(o.window)
	for next := wStart.Add(30 * time.Second); time.Now().Before(wEnd); {
		time.Sleep(min(time.Second, time.Until(wEnd)))
		if err := sc.observe(ctx, c); err != nil {
			return err
		}
		if time.Now().After(next) {
			ws, err := readWrites(auditLog)
			if err != nil {
				return err
			}
			log("%4.0fs of %s idle: %d manager writes, %d status changes so far", time.Since(wStart).Seconds(), o.window, len(between(ws, wStart, wEnd)), sc.changed)
			next = next.Add(30 * time.Second)
		}
	}
	after := k.requests()
	rss, _ := memory(mgrPid)
	time.Sleep(3 * time.Second) // the audit batch
	if err := sc.observe(ctx, c); err != nil {
		return err
	}
	all, err := readWrites(auditLog)
	if err != nil {
		return err
	}
	startup, window := between(all, t0, wStart), between(all, wStart, wEnd)

	var served, least, most int64
	least = -1
	for uid, a := range after {
		d := a - before[uid]
		served += d
		most = max(most, d)
		if least < 0 || d < least {
			least = d
		}
	}
	expected := float64(len(after)) * o.window.Seconds() / o.pollInterval.Seconds()

	fmt.Printf("\nconsumer pods     %d (%s), a fake /status at each pod's health port on 127.88.x.y\n", pods, shape)
	fmt.Printf("                  all running %.1f s after the kubelet started; every subscription Ready, ConsumersJoined, DatabaseReady and with status.lag %.1f s after\n", running.Seconds(), reported.Seconds())
	quietNote := fmt.Sprintf("then quiet for %s", quietFor)
	if !quiet {
		quietNote = fmt.Sprintf("never quiet for %s", quietFor)
	}
	fmt.Printf("manager writes    %d from the pods starting until the idle window (%s): %s\n", len(startup), quietNote, byVerbResource(startup))
	fmt.Printf("idle window       %s, --status-poll-interval %s\n", o.window, o.pollInterval)
	fmt.Printf("  manager writes  %d: %s\n", len(window), byVerbResource(window))
	fmt.Printf("  status changes  %d (a subscription's status changed between two lists a second apart); fields: %s\n", sc.changed, sc.summary())
	for _, e := range sc.examples {
		fmt.Printf("                  %s\n", e)
	}
	shown := 0
	for _, w := range window {
		if w.resource == "kafkasubscriptions/status" && shown < 3 {
			body := string(w.body)
			if len(body) > 600 {
				body = body[:600] + "..."
			}
			fmt.Printf("  status patch    %s %s %s\n", w.at.Format("15:04:05.000"), w.name, body)
			shown++
		}
	}
	fmt.Printf("  /status served  %d to %d pods, %d to %d per pod (expected about %.0f: pods x window / interval)\n", served, len(after), least, most, expected)
	fmt.Printf("  manager RSS     %.1f MiB at the end of the window\n", float64(rss)/(1<<20))
	return nil
}

// reportedCount counts the subscriptions whose status shows their running pods' reports:
// every replica ready, Ready, ConsumersJoined and DatabaseReady True, status.lag set.
func reportedCount(ctx context.Context, c client.Client) (int, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(ksubGVK.GroupVersion().WithKind("KafkaSubscriptionList"))
	if err := c.List(ctx, list); err != nil {
		return 0, err
	}
	n := 0
	for _, k := range list.Items {
		want, _, _ := unstructured.NestedInt64(k.Object, "spec", "replicas")
		ready, _, _ := unstructured.NestedInt64(k.Object, "status", "readyReplicas")
		_, hasLag, _ := unstructured.NestedMap(k.Object, "status", "lag")
		conds, _, _ := unstructured.NestedSlice(k.Object, "status", "conditions")
		isTrue := map[string]bool{}
		for _, c := range conds {
			m, _ := c.(map[string]any)
			isTrue[fmt.Sprint(m["type"])] = m["status"] == "True"
		}
		if ready == want && hasLag && isTrue["Ready"] && isTrue["ConsumersJoined"] && isTrue["DatabaseReady"] {
			n++
		}
	}
	return n, nil
}
