-- Strict JSON for token headers and claims. cjson accepts more than
-- RFC 8259 (hexadecimal numbers, nan, inf) and keeps the last of duplicate
-- keys, so two parsers could read one token differently: this scanner
-- first checks the text against the grammar, rejects duplicate keys,
-- invalid UTF-8, escaped surrogates and non-finite numbers, and bounds the
-- depth; only then does cjson decode it.
local cjson = require "cjson.safe"

local byte, sub, find = string.byte, string.sub, string.find

local _M = {}

local MAX_DEPTH = 32

local function skip_ws(s, i)
  local _, e = find(s, "^[ \t\r\n]*", i)
  return e + 1
end

-- utf8_ok checks the bytes s[i..j] form valid UTF-8 (shortest forms, no
-- surrogates, at most U+10FFFF).
local function utf8_ok(s, i, j)
  while i <= j do
    local c = byte(s, i)
    if c < 0x80 then
      i = i + 1
    else
      local n, min
      if c >= 0xC2 and c <= 0xDF then n, min = 1, 0x80
      elseif c >= 0xE0 and c <= 0xEF then n, min = 2, 0x800
      elseif c >= 0xF0 and c <= 0xF4 then n, min = 3, 0x10000
      else return false end
      if i + n > j then return false end
      local cp = c % (2 ^ (6 - n))
      for k = 1, n do
        local b = byte(s, i + k)
        if b < 0x80 or b > 0xBF then return false end
        cp = cp * 64 + (b - 0x80)
      end
      if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then return false end
      i = i + n + 1
    end
  end
  return true
end

-- scan_string reads the string starting at s[i] == '"'; it returns the
-- raw (still escaped) content and the index after the closing quote.
local function scan_string(s, i)
  i = i + 1
  local start = i
  local plain_from = i
  while true do
    local c = byte(s, i)
    if not c or c < 32 then return nil end
    if c == 34 then
      if not utf8_ok(s, plain_from, i - 1) then return nil end
      return sub(s, start, i - 1), i + 1
    end
    if c == 92 then
      if not utf8_ok(s, plain_from, i - 1) then return nil end
      local e = byte(s, i + 1)
      if e == 117 then
        local hex = sub(s, i + 2, i + 5)
        if not find(hex, "^%x%x%x%x$") then return nil end
        local cp = tonumber(hex, 16)
        if cp >= 0xD800 and cp <= 0xDFFF then return nil end
        i = i + 6
      elseif e == 34 or e == 92 or e == 47 or e == 98 or e == 102 or e == 110 or e == 114 or e == 116 then
        i = i + 2
      else
        return nil
      end
      plain_from = i
    else
      i = i + 1
    end
  end
end

local scan_value

local function scan_object(s, i, depth)
  local seen = {}
  i = skip_ws(s, i + 1)
  if byte(s, i) == 125 then return i + 1 end
  while true do
    if byte(s, i) ~= 34 then return nil end
    local raw, j = scan_string(s, i)
    if not raw then return nil end
    local key = raw
    if find(raw, "\\", 1, true) then
      key = cjson.decode('"' .. raw .. '"')
      if type(key) ~= "string" then return nil end
    end
    if seen[key] then return nil end
    seen[key] = true
    i = skip_ws(s, j)
    if byte(s, i) ~= 58 then return nil end
    i = scan_value(s, skip_ws(s, i + 1), depth)
    if not i then return nil end
    i = skip_ws(s, i)
    local c = byte(s, i)
    if c == 125 then return i + 1 end
    if c ~= 44 then return nil end
    i = skip_ws(s, i + 1)
  end
end

local function scan_array(s, i, depth)
  i = skip_ws(s, i + 1)
  if byte(s, i) == 93 then return i + 1 end
  while true do
    i = scan_value(s, i, depth)
    if not i then return nil end
    i = skip_ws(s, i)
    local c = byte(s, i)
    if c == 93 then return i + 1 end
    if c ~= 44 then return nil end
    i = skip_ws(s, i + 1)
  end
end

scan_value = function(s, i, depth)
  local c = byte(s, i)
  if not c then return nil end
  if c == 123 or c == 91 then
    if depth >= MAX_DEPTH then return nil end
    if c == 123 then return scan_object(s, i, depth + 1) end
    return scan_array(s, i, depth + 1)
  end
  if c == 34 then
    local raw, j = scan_string(s, i)
    if not raw then return nil end
    return j
  end
  if sub(s, i, i + 3) == "true" or sub(s, i, i + 3) == "null" then return i + 4 end
  if sub(s, i, i + 4) == "false" then return i + 5 end
  local _, e = find(s, "^-?[0-9]+", i)
  if not e then return nil end
  local int = sub(s, i, e)
  if find(int, "^-?0[0-9]") then return nil end
  local _, f = find(s, "^%.[0-9]+", e + 1)
  if f then e = f elseif byte(s, e + 1) == 46 then return nil end
  local _, x = find(s, "^[eE][+-]?[0-9]+", e + 1)
  if x then e = x elseif find(s, "^[eE]", e + 1) then return nil end
  local n = tonumber(sub(s, i, e))
  if not n or n == math.huge or n == -math.huge then return nil end
  return e + 1
end

-- decode_object returns the table of a JSON object text, or nil and a
-- reason when the text is anything else or breaks the rules above.
function _M.decode_object(s)
  if type(s) ~= "string" then return nil, "not text" end
  local i = skip_ws(s, 1)
  if byte(s, i) ~= 123 then return nil, "not a JSON object" end
  local e = scan_value(s, i, 0)
  if not e or skip_ws(s, e) ~= #s + 1 then return nil, "invalid JSON" end
  local v = cjson.decode(s)
  if type(v) ~= "table" then return nil, "invalid JSON" end
  return v
end

return _M
