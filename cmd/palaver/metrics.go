package main

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/palaver-bot/palaver/sessions"
)

// metrics are Palaver's Prometheus series. They are fed by the engine's
// and the Manager's observers and by the store's commit hook.
type metrics struct {
	reg *prometheus.Registry

	firstToken   *prometheus.HistogramVec
	firstVisible *prometheus.HistogramVec
	tokens       *prometheus.CounterVec
	updates      *prometheus.CounterVec
	coalesced    *prometheus.CounterVec
	rateLimited  *prometheus.CounterVec
	active       prometheus.Gauge
	answers      *prometheus.CounterVec
	upstreamErrs *prometheus.CounterVec
	storeFailed  *prometheus.CounterVec
	commit       prometheus.Histogram
	cost         *prometheus.CounterVec
	refusals     *prometheus.CounterVec
	overhead     *prometheus.HistogramVec
}

// latencyBuckets span 1 ms to about 25 s in steps of 1.5×, fine enough
// for histogram_quantile to estimate p50 and p99 within a few percent.
var latencyBuckets = prometheus.ExponentialBuckets(0.001, 1.5, 26)

// commitBuckets span 50 µs to about 1.3 s in steps of 1.5×.
var commitBuckets = prometheus.ExponentialBuckets(0.00005, 1.5, 26)

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		firstToken: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "palaver_first_token_seconds", Help: "Time from the upstream request to the model's first token.", Buckets: latencyBuckets,
		}, []string{"model"}),
		firstVisible: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "palaver_first_visible_seconds", Help: "Time from the model's first token to the first update showing text.", Buckets: latencyBuckets,
		}, []string{"platform"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palaver_tokens_total", Help: "Tokens used by answers and endpoint requests, as providers report them (else estimated), by kind: " +
				"prompt, completion (the answer's tokens other than reasoning) and reasoning, which add up to the total.",
		}, []string{"model", "kind"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palaver_updates_sent_total", Help: "Platform requests made to show answers.",
		}, []string{"platform"}),
		coalesced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palaver_updates_coalesced_total", Help: "Text changes folded into a later update instead of sent.",
		}, []string{"platform"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palaver_updates_rate_limited_total", Help: "Updates the platform refused with 429.",
		}, []string{"platform"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "palaver_active_answers", Help: "Answers being generated now.",
		}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palaver_answers_total", Help: "Finished answers by outcome.",
		}, []string{"model", "status"}),
		upstreamErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palaver_upstream_errors_total", Help: "Failed upstream requests by kind.",
		}, []string{"model", "kind"}),
		storeFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palaver_store_failures_total", Help: "Store writes that failed (a full disk, an I/O error), by what they were for: message, answer or progress.",
		}, []string{"what"}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "palaver_store_commit_seconds", Help: "bbolt write transaction commit latency.",
			Buckets: commitBuckets,
		}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palaver_cost_usd_total", Help: "Cost in USD of the tokens of palaver_tokens_total whose model has a price (models.prices, or the provider's list).",
		}, []string{"model"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palaver_budget_refusals_total", Help: "Messages and endpoint requests refused by a usage limit, by scope (user, conversation, group, model, key), or restricted: a model only admins may use.",
		}, []string{"scope"}),
		overhead: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "palaver_gateway_overhead_seconds", Help: "Time the endpoint itself adds before a response's first byte (Server-Timing's palaver entry), by route: chat, responses, embeddings, transcriptions.",
			Buckets: commitBuckets,
		}, []string{"route"}),
	}
	m.reg.MustRegister(m.firstToken, m.firstVisible, m.tokens, m.updates, m.coalesced,
		m.rateLimited, m.active, m.answers, m.upstreamErrs, m.storeFailed, m.commit, m.cost, m.refusals, m.overhead,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// platformOf is a destination id's platform ("telegram:123" → "telegram").
func platformOf(dest string) string {
	p, _, _ := strings.Cut(dest, ":")
	return p
}

// engineObserver feeds the engine's events into m.
func (m *metrics) engineObserver() sessions.Observer {
	return sessions.Observer{
		Shown: func(dest string, requests int, final bool) {
			// A draft is a request the platform does not charge (0).
			m.updates.WithLabelValues(platformOf(dest)).Add(float64(max(requests, 1)))
		},
		Coalesced: func(dest string, n int) {
			m.coalesced.WithLabelValues(platformOf(dest)).Add(float64(n))
		},
		RateLimited: func(dest string, retryAfter time.Duration) {
			m.rateLimited.WithLabelValues(platformOf(dest)).Inc()
		},
		FirstVisible: func(dest string, d time.Duration) {
			m.firstVisible.WithLabelValues(platformOf(dest)).Observe(d.Seconds())
		},
	}
}

// turnObserver feeds the Manager's events into m.
func (m *metrics) turnObserver() sessions.TurnObserver {
	return sessions.TurnObserver{
		FirstToken: func(model string, d time.Duration) { m.firstToken.WithLabelValues(model).Observe(d.Seconds()) },
		Finished:   func(model, status string) { m.answers.WithLabelValues(model, status).Inc() },
		Active:     func(delta int) { m.active.Add(float64(delta)) },
		UpstreamError: func(model, kind string) {
			m.upstreamErrs.WithLabelValues(model, kind).Inc()
		},
		StoreFailed:   func(what string) { m.storeFailed.WithLabelValues(what).Inc() },
		Usage:         m.observeUsage,
		BudgetRefused: func(scope string) { m.refusals.WithLabelValues(scope).Inc() },
	}
}

// observeUsage counts one answer's or endpoint request's recorded usage.
func (m *metrics) observeUsage(model string, t sessions.Tally) {
	m.tokens.WithLabelValues(model, "prompt").Add(float64(t.PromptTokens))
	m.tokens.WithLabelValues(model, "completion").Add(float64(t.CompletionTokens - t.ReasoningTokens))
	m.tokens.WithLabelValues(model, "reasoning").Add(float64(t.ReasoningTokens))
	if t.CostNanoUSD > 0 {
		m.cost.WithLabelValues(model).Add(t.CostUSD())
	}
}

// observeCommit records one store commit.
func (m *metrics) observeCommit(seconds float64) { m.commit.Observe(seconds) }

// observeOverhead records the time the endpoint added before a response's
// first byte on route.
func (m *metrics) observeOverhead(route string, d time.Duration) {
	m.overhead.WithLabelValues(route).Observe(d.Seconds())
}

// handler serves /metrics.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
