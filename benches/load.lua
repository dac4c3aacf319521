-- The wrk script of benches/load.rs: one request kind per run, taken from a pool file.
-- Everything comes from the environment, set by the benchmark:
--   BENCH_SCENARIO  cuat | refresh | mine | login | token
--   BENCH_POOL      pool file, one item per line:
--                     cuat: "<access token> <company-user uuid>"; refresh: "<refresh token>";
--                     mine: "<access token>"; login, token: "<e-mail>"
--   BENCH_THREADS   wrk's -t: thread k takes lines k, k + n, k + 2n, ... (no line is shared)
--   BENCH_ONCE      "1": each line is used once; a thread whose lines run out stops
--                   (refresh tokens must never be reused: a reuse revokes a whole family)
--   BENCH_DELAY_MS  optional pause before each request (a paced side load)
--   BENCH_PASSWORD  the password of every customer (login, token)
--   BENCH_OUT       where done() writes the figures as one JSON object
-- Requests are built once in init(); response() is not defined, so wrk does not hand
-- bodies to Lua (that would cost the load generator CPU the server needs).

local scenario = os.getenv("BENCH_SCENARIO")
local pool_path = os.getenv("BENCH_POOL")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local once = os.getenv("BENCH_ONCE") == "1"
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "")
local password = os.getenv("BENCH_PASSWORD") or ""

local threads = {}
local created = 0

function setup(thread)
   thread:set("tid", created)
   created = created + 1
   table.insert(threads, thread)
end

local function jsonapi(extra)
   local headers = { ["Content-Type"] = "application/vnd.api+json" }
   for k, v in pairs(extra or {}) do
      headers[k] = v
   end
   return headers
end

-- application/x-www-form-urlencoded: everything but unreserved characters as %XX.
local function form_escape(s)
   return (s:gsub("[^%w%-%._~]", function(c)
      return string.format("%%%02X", string.byte(c))
   end))
end

local function build(line)
   if scenario == "cuat" then
      local token, uuid = line:match("^(%S+) (%S+)$")
      return wrk.format("POST", "/company-user-access-tokens",
         jsonapi({ ["Authorization"] = "Bearer " .. token }),
         '{"data":{"type":"company-user-access-tokens","attributes":{"idCompanyUser":"'
            .. uuid .. '"}}}')
   elseif scenario == "refresh" then
      return wrk.format("POST", "/refresh-tokens", jsonapi(),
         '{"data":{"type":"refresh-tokens","attributes":{"refreshToken":"' .. line .. '"}}}')
   elseif scenario == "mine" then
      return wrk.format("GET", "/company-users/mine", { ["Authorization"] = "Bearer " .. line })
   elseif scenario == "login" then
      return wrk.format("POST", "/access-tokens", jsonapi(),
         '{"data":{"type":"access-tokens","attributes":{"username":"' .. line
            .. '","password":"' .. password .. '"}}}')
   elseif scenario == "token" then
      return wrk.format("POST", "/token",
         { ["Content-Type"] = "application/x-www-form-urlencoded" },
         "grant_type=password&username=" .. form_escape(line)
            .. "&password=" .. form_escape(password))
   end
   error("unknown BENCH_SCENARIO " .. tostring(scenario))
end

function init(args)
   reqs = {}
   local i = 0
   for line in io.lines(pool_path) do
      if line ~= "" then
         if i % nthreads == tid then
            reqs[#reqs + 1] = build(line)
         end
         i = i + 1
      end
   end
   pos = 0
   exhausted = 0
   idle = wrk.format("GET", "/health/live", {})
end

if delay_ms then
   function delay()
      return delay_ms
   end
end

function request()
   pos = pos + 1
   if pos > #reqs then
      if once then
         -- Out of single-use items: stop this thread rather than reuse one. wrk still
         -- wants a request for this call; a harmless one goes out before the loop ends.
         pos = #reqs
         exhausted = 1
         wrk.thread:stop()
         return idle
      end
      pos = 1
   end
   return reqs[pos]
end

function done(summary, latency, requests)
   local used, out_of_pool = 0, 0
   for _, thread in ipairs(threads) do
      used = used + (thread:get("pos") or 0)
      out_of_pool = out_of_pool + (thread:get("exhausted") or 0)
   end
   local e = summary.errors
   local f = assert(io.open(os.getenv("BENCH_OUT"), "w"))
   f:write(string.format(
      '{"requests":%d,"duration_us":%d,"bytes":%d,'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
         .. '"latency_us":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d},'
         .. '"pool_used":%d,"threads_out_of_pool":%d}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9), latency.max,
      used, out_of_pool))
   f:close()
end
