// Command clientgo drives the embedded API server with client-go's typed clientset, every default as upstream ships
// it (protobuf bodies, Accept "application/vnd.kubernetes.protobuf,application/json"): it creates a ResourceSlice,
// gets and lists it, watches and deletes it, and prints what happened (and the media types seen on the wire) as JSON.
//
// Usage: clientgo <kubeconfig>
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	resourcev1 "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// mediaTypes records the Content-Type of every request body and answer; it only observes, the client decides.
type mediaTypes struct {
	next http.RoundTripper
	mu   sync.Mutex
	sent map[string]bool
	got  map[string]bool
}

func (m *mediaTypes) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := m.next.RoundTrip(req)
	m.mu.Lock()
	defer m.mu.Unlock()
	if ct := req.Header.Get("Content-Type"); ct != "" {
		m.sent[req.Method+" "+ct] = true
	}
	if resp != nil {
		m.got[req.Method+" "+resp.Header.Get("Content-Type")] = true
	}
	return resp, err
}

func keys(m map[string]bool) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	return out
}

func run(kubeconfig string) (map[string]any, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	seen := &mediaTypes{sent: map[string]bool{}, got: map[string]bool{}}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { seen.next = rt; return seen })
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	slices := cs.ResourceV1().ResourceSlices()
	node, family := "node-a", "loihi2"
	slice := &resourcev1.ResourceSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "clientgo-slice", Labels: map[string]string{"made-by": "client-go"}},
		Spec: resourcev1.ResourceSliceSpec{
			Driver:   "snn.dra.dev",
			NodeName: &node,
			Pool:     resourcev1.ResourcePool{Name: node, Generation: 0, ResourceSliceCount: 1},
			Devices: []resourcev1.Device{{
				Name:       "chip-0",
				Attributes: map[resourcev1.QualifiedName]resourcev1.DeviceAttribute{"snn.dra.dev/family": {StringValue: &family}},
				Capacity:   map[resourcev1.QualifiedName]resourcev1.DeviceCapacity{"snn.dra.dev/cores": {Value: resource.MustParse("128")}},
			}},
		},
	}
	created, err := slices.Create(ctx, slice, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	got, err := slices.Get(ctx, created.Name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	list, err := slices.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	names := []string{}
	for _, s := range list.Items {
		names = append(names, s.Name)
	}
	w, err := slices.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	defer w.Stop()
	if err := slices.Delete(ctx, created.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &created.UID}}); err != nil {
		return nil, fmt.Errorf("delete: %w", err)
	}
	ev, ok := <-w.ResultChan()
	if !ok {
		return nil, fmt.Errorf("watch closed before the deletion arrived")
	}
	deleted, _ := ev.Object.(*resourcev1.ResourceSlice)
	_, missingErr := slices.Get(ctx, created.Name, metav1.GetOptions{})
	capacity := got.Spec.Devices[0].Capacity["snn.dra.dev/cores"]
	return map[string]any{
		"created":        created.Name,
		"uid":            string(created.UID),
		"creationSet":    !created.CreationTimestamp.IsZero(),
		"poolGeneration": got.Spec.Pool.Generation,
		"nodeName":       *got.Spec.NodeName,
		"family":         *got.Spec.Devices[0].Attributes["snn.dra.dev/family"].StringValue,
		"cores":          capacity.Value.String(),
		"listed":         names,
		"watchEvent":     string(ev.Type),
		"watchObject":    deleted != nil && deleted.Name == created.Name,
		"getAfterDelete": fmt.Sprint(missingErr),
		"sentMediaTypes": keys(seen.sent),
		"answeredAs":     keys(seen.got),
	}, nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: clientgo <kubeconfig>")
		os.Exit(2)
	}
	out, err := run(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "clientgo:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}
