package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape is one reading of Palaver's /metrics.
type scrape map[string]*dto.MetricFamily

// scrape reads /metrics.
func (p *palaverProc) scrape(ctx context.Context) (scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metrics+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape /metrics: %w", err)
	}
	return scrape(fams), nil
}

// matches reports whether m has every label in want.
func matches(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == k && l.GetValue() == v {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// value sums the counter, gauge or untyped series of name that carry the
// labels in want (none: all of them). A missing family is 0.
func (s scrape) value(name string, want map[string]string) float64 {
	f := s[name]
	if f == nil {
		return 0
	}
	total := 0.0
	for _, m := range f.GetMetric() {
		if !matches(m, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total
}

// bucket is a cumulative histogram bucket.
type bucket struct {
	le    float64
	count float64
}

// histogram merges the histogram series of name carrying want.
func (s scrape) histogram(name string, want map[string]string) []bucket {
	f := s[name]
	if f == nil {
		return nil
	}
	byLE := map[float64]float64{}
	for _, m := range f.GetMetric() {
		if m.Histogram == nil || !matches(m, want) {
			continue
		}
		inf := false
		for _, b := range m.GetHistogram().GetBucket() {
			byLE[b.GetUpperBound()] += float64(b.GetCumulativeCount())
			inf = inf || math.IsInf(b.GetUpperBound(), 1)
		}
		if !inf {
			byLE[math.Inf(1)] += float64(m.GetHistogram().GetSampleCount())
		}
	}
	var out []bucket
	for le, c := range byLE {
		out = append(out, bucket{le, c})
	}
	slices.SortFunc(out, func(a, b bucket) int {
		switch {
		case a.le < b.le:
			return -1
		case a.le > b.le:
			return 1
		}
		return 0
	})
	return out
}

// histogramQuantile estimates quantile q of the observations made between
// two scrapes of histogram name, as Prometheus's histogram_quantile does
// (linear within a bucket). It returns NaN when there were none.
func histogramQuantile(before, after scrape, name string, want map[string]string, q float64) float64 {
	a := after.histogram(name, want)
	b := before.histogram(name, want)
	prev := map[float64]float64{}
	for _, x := range b {
		prev[x.le] = x.count
	}
	for i := range a {
		a[i].count -= prev[a[i].le]
	}
	if len(a) == 0 || a[len(a)-1].count <= 0 {
		return math.NaN()
	}
	total := a[len(a)-1].count
	rank := q * total
	lower, below := 0.0, 0.0
	for _, x := range a {
		if x.count >= rank {
			if math.IsInf(x.le, 1) {
				return lower // beyond the last bound: the bound is all we know
			}
			if x.count == below {
				return x.le
			}
			return lower + (x.le-lower)*(rank-below)/(x.count-below)
		}
		lower, below = x.le, x.count
	}
	return lower
}

// sampler reads /metrics every period and keeps the peaks of the gauges
// that have no high-water mark of their own.
type sampler struct {
	mu         sync.Mutex
	goroutines float64
	rss        float64
	active     float64
	heap       float64 // heap in use, bytes
	stacks     float64 // goroutine stacks in use, bytes
}

// sample reads /metrics every period until ctx ends, keeping the peaks;
// with a profiler it also saves palaver's profiles at each new peak of
// the heap in use.
func (p *palaverProc) sample(ctx context.Context, period time.Duration, prof *profiler) *sampler {
	s := &sampler{}
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			sc, err := p.scrape(ctx)
			if err != nil {
				continue
			}
			s.mu.Lock()
			s.goroutines = max(s.goroutines, sc.value("go_goroutines", nil))
			s.rss = max(s.rss, sc.value("process_resident_memory_bytes", nil))
			s.active = max(s.active, sc.value("palaver_active_answers", nil))
			s.heap = max(s.heap, sc.value("go_memstats_heap_inuse_bytes", nil))
			s.stacks = max(s.stacks, sc.value("go_memstats_stack_inuse_bytes", nil))
			s.mu.Unlock()
			prof.observe(ctx, sc.value("go_memstats_heap_inuse_bytes", nil))
		}
	}()
	return s
}

func (s *sampler) peaks() (goroutines, rss, active, heap, stacks float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.goroutines, s.rss, s.active, s.heap, s.stacks
}
