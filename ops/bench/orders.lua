-- orders.lua - wrk script for the order figure of bench_api.sh: guest
-- orders (POST /api/v1/orders) of 1-3 lines over the catalog, each line a
-- different watch, quantity 1-2, at the catalog's price (a wrong price would
-- be refused with 409 price_changed).
--
-- The catalog comes from a Lua file named by $ORDERS_CATALOG that returns
-- { {"<watch uuid>", "495.00"}, ... }; bench_api.sh writes it from
-- GET /api/v1/watches before the run.
--
-- Only 201s count as orders: the responses are counted by status in every
-- thread and added up in done(), which prints one machine-readable line
-- (and the first refusal's body, if any).

local catalog_file = os.getenv("ORDERS_CATALOG")
assert(catalog_file, "ORDERS_CATALOG names the catalog file")
local catalog = dofile(catalog_file)
assert(#catalog >= 3, "the catalog has fewer than 3 watches")

local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

local reqs, n_reqs, idx = {}, 2048, 0

function init(args)
  created, s2xx, s4xx, s5xx, sother = 0, 0, 0, 0, 0
  first_refusal = ""
  math.randomseed(1000 + (tid or 0))
  local headers = { ["Content-Type"] = "application/json" }
  for i = 1, n_reqs do
    local n = math.random(1, 3)
    local used, items = {}, {}
    while #items < n do
      local k = math.random(1, #catalog)
      if not used[k] then
        used[k] = true
        local w = catalog[k]
        items[#items + 1] = string.format(
          '{"watch_id":"%s","quantity":%d,"unit_price":"%s"}', w[1], math.random(1, 2), w[2])
      end
    end
    local body = '{"items":[' .. table.concat(items, ",") ..
      '],"shipping_address":"1 Bench Street\\n12345 Loadtown"}'
    reqs[i] = wrk.format("POST", "/api/v1/orders", headers, body)
  end
  idx = math.random(0, n_reqs - 1)
end

function request()
  idx = idx % n_reqs + 1
  return reqs[idx]
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  else
    if status >= 200 and status < 300 then s2xx = s2xx + 1
    elseif status >= 400 and status < 500 then s4xx = s4xx + 1
    elseif status >= 500 then s5xx = s5xx + 1
    else sother = sother + 1 end
    if first_refusal == "" then
      first_refusal = tostring(status) .. " " .. string.sub(body or "", 1, 300)
    end
  end
end

done = function(summary, latency, requests)
  local c, o2, o4, o5, oo, refusal = 0, 0, 0, 0, 0, ""
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    o2 = o2 + t:get("s2xx")
    o4 = o4 + t:get("s4xx")
    o5 = o5 + t:get("s5xx")
    oo = oo + t:get("sother")
    if refusal == "" then refusal = t:get("first_refusal") end
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.1f created=%d orders_per_s=%.1f " ..
    "p50_us=%d p99_us=%d max_us=%d non2xx=%d other2xx=%d s4xx=%d s5xx=%d sother=%d " ..
    "connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, summary.requests / secs, c, c / secs,
    latency:percentile(50), latency:percentile(99), latency.max, e.status, o2, o4, o5, oo,
    e.connect, e.read, e.write, e.timeout))
  if refusal ~= "" then
    io.write("FIRST_REFUSAL " .. string.gsub(refusal, "\n", " ") .. "\n")
  end
end
