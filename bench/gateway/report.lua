-- Prints one machine-readable line per wrk run: requests/s, p50 and p99 in ms, the number
-- of failed requests (non-2xx/3xx or socket errors, which must be 0 to count) and the total.
done = function(summary, latency, requests)
  local errors = summary.errors
  local failed = errors.status + errors.connect + errors.read + errors.write + errors.timeout
  io.write(string.format("RESULT %.1f %.3f %.3f %d %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    failed,
    summary.requests))
end
