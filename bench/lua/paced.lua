-- Fixed rate: every connection waits `delay_ms` before each request (args[1]).
-- wrk starts a request's latency clock when it writes, so the pause is not counted.
local delay_ms = 10

function init(args)
   delay_ms = tonumber(args[1]) or delay_ms
end

function delay()
   return delay_ms
end
