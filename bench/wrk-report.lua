-- wrk reporter shared by the bench scripts: one machine-readable RESULT line per run.
-- WRK_DELAY_MS=N paces the load: every connection waits N ms after each response before its
-- next request, so -cC gives about C*1000/(N+latency) requests/s (latency at a given rate,
-- instead of at saturation, where it is all queueing).
local pace = tonumber(os.getenv("WRK_DELAY_MS") or "")
if pace then
  function delay()
    return pace
  end
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT requests=%d duration_s=%.2f rps=%.0f p50_ms=%.3f p99_ms=%.3f non2xx=%d socket_errors=%d\n",
    summary.requests, secs, summary.requests / secs, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
