-- ACL evaluation: ordered rules, the first match decides, no match denies.
-- The documents were validated by the companion; compile still refuses a
-- shape it does not know, so a bad push cannot open anything.
local _M = {}

local function set_of(list)
  if list == nil then return nil end
  if type(list) ~= "table" then error("not a list") end
  if #list == 0 then return nil end
  local s = {}
  for _, v in ipairs(list) do
    if type(v) ~= "string" then error("not a string") end
    s[v] = true
  end
  return s
end

-- compile turns one validated document into matchers.
function _M.compile(doc)
  if type(doc) ~= "table" or type(doc.rules) ~= "table" then error("acl: no rules") end
  local out = { digest = doc.digest, version = doc.version, shadow = doc.mode == "shadow", rules = {} }
  for i, r in ipairs(doc.rules) do
    if r.action ~= "allow" and r.action ~= "deny" then error("acl: rule " .. i .. ": bad action") end
    local c = {
      allow = r.action == "allow", name = r.name,
      subjects = set_of(r.subjects), groups = set_of(r.groups),
      methods = set_of(r.methods), scopes = {}, exact = {}, prefixes = {},
    }
    for _, s in ipairs(r.scopes or {}) do
      if type(s) ~= "string" then error("acl: bad scope") end
      c.scopes[#c.scopes + 1] = s
    end
    c.any_path = true
    for _, p in ipairs(r.paths or {}) do
      c.any_path = false
      if type(p.exact) == "string" then
        c.exact[p.exact] = true
      elseif type(p.prefix) == "string" then
        c.prefixes[#c.prefixes + 1] = p.prefix
      else
        error("acl: bad path")
      end
    end
    out.rules[i] = c
  end
  return out
end

local function path_ok(c, path)
  if c.any_path or c.exact[path] then return true end
  for _, p in ipairs(c.prefixes) do
    if path:sub(1, #p) == p then
      -- "/api" covers "/api" and "/api/..." but not "/apix".
      if #path == #p or p:sub(-1) == "/" or path:sub(#p + 1, #p + 1) == "/" then return true end
    end
  end
  return false
end

local function who_ok(c, id)
  if not c.subjects and not c.groups then return true end
  if c.subjects and c.subjects[id.sub] then return true end
  if c.groups then
    for g in pairs(id.groups) do
      if c.groups[g] then return true end
    end
  end
  return false
end

-- evaluate returns whether the request is allowed and the index and name
-- of the deciding rule (0 when no rule matched).
function _M.evaluate(acl, id, method, path)
  for i, c in ipairs(acl.rules) do
    if who_ok(c, id) and (not c.methods or c.methods[method]) and path_ok(c, path) then
      local scoped = true
      for _, s in ipairs(c.scopes) do
        if not id.scopes[s] then scoped = false break end
      end
      if scoped then return c.allow, i, c.name end
    end
  end
  return false, 0, nil
end

return _M
