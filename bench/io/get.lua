-- get.lua - wrk script for bench/io/run.sh: plain GETs of the URL on the
-- command line; at the end one machine-readable line,
--   RESULT <req/s> <p50 us> <p99 us> <errors> <requests>
-- where errors = connect + read + write + timeout + non-2xx/3xx responses.
function done(summary, latency, requests)
   local e = summary.errors
   local errors = e.connect + e.read + e.write + e.timeout + e.status
   io.write(string.format("RESULT %.1f %d %d %d %d\n",
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99), errors, summary.requests))
end
