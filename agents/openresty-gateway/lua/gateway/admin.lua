-- The companion's endpoint, served only on a unix socket inside the
-- root-only state directory: PUT /state stores a new state after it
-- compiled here, GET /state reports the versions in force (and how many
-- public keys this worker has parsed since it started).
local cjson = require "cjson.safe"
local state = require "gateway.state"

local _M = {}

local function reply(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(body))
  return ngx.exit(status)
end

function _M.handle()
  local method = ngx.req.get_method()
  if method == "PUT" then
    ngx.req.read_body()
    local text = ngx.req.get_body_data()
    if not text then return reply(400, { error = "empty or oversized body" }) end
    -- Compiled against the state in force, so that keys it holds are
    -- not parsed again.
    local c, err = state.try_compile(text, state.current())
    if not c then return reply(422, { error = err }) end
    local ok, serr = state.store(text, c.version, c)
    if not ok then return reply(507, { error = serr }) end
    return reply(200, { version = c.version })
  elseif method == "GET" then
    local c = state.current()
    if not c then return reply(200, { version = cjson.null }) end
    local acls = {}
    for svc, d in pairs(c.acls) do acls[svc] = d.digest end
    local keys = {}
    for iss, ip in pairs(c.policy.issuers) do
      local m = {}
      for _, k in ipairs(ip.keys) do
        if k.version then m[k.kid or ""] = k.version end
      end
      keys[iss] = m
    end
    return reply(200, { version = c.version, keys_version = c.keys_version, acls = acls, keys = keys,
      key_parses = state.parses })
  end
  return reply(405, { error = "method not allowed" })
end

return _M
