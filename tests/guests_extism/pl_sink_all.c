/* pl_sink_all.c - pl_sink.c without sink_matches: a sink that takes every
 * unmatched request (test_pipeline.sh). */
#define PL_SINK_NO_MATCHES 1
#include "pl_sink.c"
