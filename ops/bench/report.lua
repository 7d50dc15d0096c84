-- report.lua - wrk script for the GET figures of bench_api.sh: the same
-- request every time (wrk's default), and one machine-readable line at the
-- end with what the summary says: requests/s over the run, p50 and p99
-- latency, non-2xx/3xx responses and socket errors.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d max_us=%d " ..
    "non2xx=%d connect=%d read=%d write=%d timeout=%d bytes=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout, summary.bytes))
end
