/*
 * metrics.h - Kiln's process-wide metrics registry: counters, gauges and
 * histograms by name, updated lock-free from any thread, exported in the
 * Prometheus text format (admin API `GET /v1/metrics`).
 *
 * Metrics are never removed: a registry of at most METRICS_MAX entries,
 * each defined once (defining an existing name with the same type returns
 * the same id, so every worker's copy of a filter shares one counter).
 * Definition takes a mutex (rare); updates and reads are atomics on the
 * entry, which is never moved. Names are kept as given; the exporter turns
 * characters Prometheus does not allow into '_'.
 * Producers: the proxy-wasm host's proxy_define_metric and the pipeline's
 * stage durations (src/http/pipeline.c, kiln_stage_duration_us).
 */
#ifndef KILN_BASE_METRICS_H
#define KILN_BASE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX 4096
#define METRICS_NAME_MAX 200
/* Histogram buckets: upper bounds 1, 2, 4, ... 2^(METRICS_BUCKETS-2), +Inf. */
#define METRICS_BUCKETS 32

typedef enum metrics_type {
    METRICS_COUNTER = 0,
    METRICS_GAUGE = 1,
    METRICS_HISTOGRAM = 2,
} metrics_type;

/* Id of metric `name` (len bytes) of `type`, defined if new. KILN_OK,
 * KILN_EINVAL (empty or too long a name, or the name exists with another
 * type) or KILN_ELIMIT (registry full). */
int metrics_define(metrics_type type, const char *name, size_t len, uint32_t *id /* OUT */);
/* Counter or gauge += delta (a counter refuses negative deltas: KILN_EINVAL).
 * KILN_EINVAL for an unknown id or a histogram. */
int metrics_add(uint32_t id, int64_t delta);
/* Gauge = v; counter += v; histogram: one observation of v. */
int metrics_record(uint32_t id, uint64_t v);
/* Counter or gauge value; KILN_EINVAL for a histogram or unknown id. */
int metrics_get(uint32_t id, int64_t *v /* OUT */);
int metrics_type_of(uint32_t id, metrics_type *t /* OUT */);
/* Every metric in the Prometheus text exposition format (version 0.0.4):
 * kiln_malloc'd text, *len its length; NULL when out of memory. */
char *metrics_prometheus(size_t *len /* OUT */);

#endif
