-- bench/bot/webhook.lua — wrk script for bench/bot_webhook.sh: POSTs Telegram
-- webhook updates (a private text message) the way Telegram does, with the
-- X-Telegram-Bot-Api-Secret-Token header.
--
--   wrk -t2 -c64 -d12s -s webhook.lua URL -- SECRET CHATS CHAT_BASE UPDATE_BASE THREADS
--
-- CHATS distinct chats (ids CHAT_BASE+1 .. CHAT_BASE+CHATS, user id = chat
-- id) are split between the THREADS wrk threads (thread t takes the chats
-- with index = t mod THREADS) and each thread walks its own chats round
-- robin. A chat comes back only after CHATS/THREADS requests of its thread,
-- far more than the connections a thread has in flight, so a chat never has
-- two updates in flight at once (Telegram too sends a chat's next update only
-- after the previous one was answered). update_id = UPDATE_BASE + a per-run
-- counter, unique across threads (thread t uses t, t+THREADS, ...).
--
-- At the end one line for the script that runs wrk:
--   RESULT requests=N seconds=S rps=R p50_ms=.. p90_ms=.. p99_ms=.. max_ms=..
--          non2xx=N connect_err=N read_err=N write_err=N timeouts=N
-- non2xx counts every answer whose status is not 2xx (counted per thread in
-- response(), not wrk's own "status >= 400" count).

local threads = {}
local nsetup = 0

function setup(thread)
	thread:set("tid", nsetup)
	nsetup = nsetup + 1
	table.insert(threads, thread)
end

function init(args)
	secret = args[1] or "bench-secret"
	chats = tonumber(args[2] or "10000")
	chat_base = tonumber(args[3] or "7100000000")
	update_base = tonumber(args[4] or "1")
	nthreads = tonumber(args[5] or "2")
	per_thread = math.floor(chats / nthreads)
	if per_thread < 1 then
		per_thread = 1
	end
	n = 0
	non2xx = 0
	now = os.time()
	wrk.method = "POST"
	wrk.headers["Content-Type"] = "application/json"
	wrk.headers["X-Telegram-Bot-Api-Secret-Token"] = secret
end

local fmt = '{"update_id":%.0f,"message":{"message_id":%.0f,"date":%.0f,' ..
	'"chat":{"id":%.0f,"first_name":"Bench","type":"private"},' ..
	'"from":{"id":%.0f,"is_bot":false,"first_name":"Bench","language_code":"en"},' ..
	'"text":"echo %.0f"}}'

function request()
	local idx = tid + nthreads * (n % per_thread) -- 0 .. chats-1
	local chat = chat_base + 1 + idx
	local uid = update_base + tid + nthreads * n
	n = n + 1
	local body = string.format(fmt, uid, n, now, chat, chat, uid)
	return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
	if status < 200 or status > 299 then
		non2xx = non2xx + 1
	end
end

function done(summary, latency, requests)
	local bad = 0
	for _, t in ipairs(threads) do
		bad = bad + (t:get("non2xx") or 0)
	end
	local secs = summary.duration / 1e6
	local e = summary.errors
	io.write(string.format("RESULT requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f " ..
		"p99_ms=%.3f max_ms=%.3f non2xx=%d connect_err=%d read_err=%d write_err=%d timeouts=%d\n",
		summary.requests, secs, summary.requests / secs, latency:percentile(50) / 1000,
		latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000, bad,
		e.connect, e.read, e.write, e.timeout))
end
