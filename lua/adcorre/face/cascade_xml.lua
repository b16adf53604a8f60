--- adcorre.face.cascade_xml: reads an OpenCV cascade classifier XML (the
-- format written by opencv_traincascade, as in Debian's opencv-data:
-- <cascade> with stageType BOOST, featureType HAAR or LBP, width, height,
-- stages of weakClassifiers with internalNodes and leafValues, and features)
-- into the flat arrays that the C detector takes (csrc/face/cascade.h).
--
--   local spec = require("adcorre.face.cascade_xml").read(path)
--   local c = require("adcorre.core").face.cascade(spec)
--
-- Errors name the file and what is missing or malformed. The pre-2.0 format
-- (<haarcascade_* type_id="opencv-haar-classifier">) is refused by name.
local M = {}

local function fail(path, fmt, ...)
  error(("face cascade '%s': " .. fmt):format(path, ...), 0)
end

local function numbers(text, path, what)
  local out = {}
  for tok in text:gsub("<_>", " "):gsub("</_>", " "):gmatch("%S+") do
    local v = tonumber(tok)
    if not v then fail(path, "%s: '%s' is not a number", what, tok:sub(1, 40)) end
    out[#out + 1] = v
  end
  return out
end

local function field(body, name, path, optional)
  local v = body:match("<" .. name .. ">%s*(.-)%s*</" .. name .. ">")
  if not v and not optional then fail(path, "no <%s> element", name) end
  return v
end

--- Parses the XML text of a cascade file (path only names it in errors).
function M.parse(xml, path)
  path = path or "<memory>"
  if type(xml) ~= "string" then fail(path, "expected the XML text, got %s", type(xml)) end
  xml = xml:gsub("<!%-%-.-%-%->", "")
  if xml:find('type_id="opencv-haar-classifier"', 1, true) then
    fail(path, "is in the old (OpenCV 1.x) Haar format; only cascades written by opencv_traincascade are read")
  end
  local cascade = xml:match("<cascade[^>]*>(.*)</cascade>")
  if not cascade then fail(path, "no <cascade> element (not an OpenCV cascade classifier)") end
  local stage_type = field(cascade, "stageType", path)
  if stage_type ~= "BOOST" then fail(path, "stageType %s is not BOOST", stage_type) end
  local ftype = field(cascade, "featureType", path)
  if ftype ~= "HAAR" and ftype ~= "LBP" then fail(path, "featureType %s is not HAAR or LBP", ftype) end
  local spec = {
    type = ftype:lower(),
    width = math.tointeger(tonumber(field(cascade, "width", path))),
    height = math.tointeger(tonumber(field(cascade, "height", path))),
    stage_threshold = {}, stage_ntrees = {}, tree_nodes = {},
    node_left = {}, node_right = {}, node_feature = {}, node_threshold = {}, node_subset = {},
    leaves = {}, rects = {}, tilted = {},
  }
  if not spec.width or not spec.height then fail(path, "width and height must be integers") end
  local ncat = tonumber(field(cascade, "maxCatCount", path, true) or "0") or 0
  local lbp = spec.type == "lbp"
  if lbp and ncat ~= 256 then fail(path, "LBP cascade with maxCatCount %s (256 expected)", tostring(ncat)) end
  if not lbp and ncat ~= 0 then fail(path, "Haar cascade with maxCatCount %s (0 expected)", tostring(ncat)) end
  local step = lbp and 11 or 4 -- left right feature then 8 subset words or a threshold

  local stages = cascade:match("<stages>(.*)</stages>")
  if not stages then fail(path, "no <stages> element") end
  local pos, s = 1, 0
  while true do
    local a, b, thr = stages:find("<stageThreshold>%s*(%S-)%s*</stageThreshold>", pos)
    if not a then break end
    s = s + 1
    local wa, wb = stages:find("<weakClassifiers>", b + 1, true)
    local ea, eb = stages:find("</weakClassifiers>", b + 1, true)
    if not wa or not ea or ea < wa then fail(path, "stage %d has no <weakClassifiers>", s) end
    local t = tonumber(thr)
    if not t then fail(path, "stage %d: stageThreshold '%s' is not a number", s, thr) end
    spec.stage_threshold[s] = t
    local ntrees = 0
    for nodes_txt, leaves_txt in stages:sub(wb + 1, ea - 1):gmatch(
        "<internalNodes>(.-)</internalNodes>%s*<leafValues>(.-)</leafValues>") do
      ntrees = ntrees + 1
      local where = ("stage %d weak classifier %d"):format(s, ntrees)
      local nodes = numbers(nodes_txt, path, where .. " internalNodes")
      local leaves = numbers(leaves_txt, path, where .. " leafValues")
      if #nodes == 0 or #nodes % step ~= 0 then
        fail(path, "%s: %d internalNodes values, not a multiple of %d", where, #nodes, step)
      end
      local n = #nodes // step
      if #leaves ~= n + 1 then fail(path, "%s: %d leafValues for %d nodes", where, #leaves, n) end
      spec.tree_nodes[#spec.tree_nodes + 1] = n
      for k = 0, n - 1 do
        local base = k * step
        local j = #spec.node_feature + 1
        for q, key in ipairs({ "node_left", "node_right", "node_feature" }) do
          local v = math.tointeger(nodes[base + q])
          if not v then fail(path, "%s: node %d %s is not an integer", where, k, key:sub(6)) end
          spec[key][j] = v
        end
        if lbp then
          for q = 4, 11 do
            local v = math.tointeger(nodes[base + q])
            if not v or v < -2147483648 or v > 2147483647 then
              fail(path, "%s: node %d subset word is not a 32-bit integer", where, k)
            end
            spec.node_subset[#spec.node_subset + 1] = v
          end
        else
          spec.node_threshold[j] = nodes[base + 4]
        end
      end
      for _, v in ipairs(leaves) do spec.leaves[#spec.leaves + 1] = v end
    end
    if ntrees == 0 then fail(path, "stage %d has no weak classifier", s) end
    spec.stage_ntrees[s] = ntrees
    pos = eb + 1
  end
  if s == 0 then fail(path, "no stage") end

  local features = cascade:match("<features>(.*)</features>")
  if not features then fail(path, "no <features> element") end
  local f = 0
  if lbp then
    for body in features:gmatch("<rect>(.-)</rect>") do
      f = f + 1
      local r = numbers(body, path, ("feature %d rect"):format(f - 1))
      if #r ~= 4 then fail(path, "feature %d: rect has %d values (x y w h expected)", f - 1, #r) end
      for q = 1, 4 do spec.rects[#spec.rects + 1] = r[q] end
    end
  else
    pos = 1
    while true do
      local a, b, body = features:find("<rects>(.-)</rects>", pos)
      if not a then break end
      f = f + 1
      local r = numbers(body, path, ("feature %d rects"):format(f - 1))
      if #r == 0 or #r % 5 ~= 0 or #r > 15 then
        fail(path, "feature %d: %d rect values (1 to 3 of x y w h weight expected)", f - 1, #r)
      end
      for q = 1, 15 do spec.rects[#spec.rects + 1] = r[q] or 0 end
      local tilted = features:match("^%s*<tilted>%s*(%d)%s*</tilted>", b + 1)
      spec.tilted[f] = tonumber(tilted or "0")
      pos = b + 1
    end
  end
  if f == 0 then fail(path, "no feature") end
  for j, feat in ipairs(spec.node_feature) do
    if feat < 0 or feat >= f then fail(path, "node %d uses feature %d of %d", j, feat, f) end
  end
  return spec
end

--- Reads and parses a cascade file.
function M.read(path)
  local fh, err = io.open(path, "rb")
  if not fh then fail(path, "cannot open (%s)", tostring(err)) end
  local xml = fh:read("a")
  fh:close()
  return M.parse(xml, path)
end

return M
