--- adcorre.predict.batch: the many-pictures side of predict.lua: input
-- lists (files, folders with or without recursion, list files), a progress
-- line with images/s, and the CSV of one row per face, written to a
-- temporary name and renamed when complete.
local M = {}

M.image_ext = { jpg = true, jpeg = true, png = true, bmp = true, tga = true, gif = true, pnm = true,
                ppm = true, pgm = true }

local function lfs() return require("lfs") end

--- Image paths under a folder in sorted order (with `recursive`, sub-folders too).
function M.folder(dir, recursive, out)
  out = out or {}
  local names = {}
  for name in lfs().dir(dir) do
    if name ~= "." and name ~= ".." then names[#names + 1] = name end
  end
  table.sort(names)
  for _, name in ipairs(names) do
    local p = dir .. "/" .. name
    local mode = lfs().attributes(p, "mode")
    if mode == "directory" then
      if recursive then M.folder(p, true, out) end
    elseif mode == "file" then
      local ext = name:match("%.([%w]+)$")
      if ext and M.image_ext[ext:lower()] then out[#out + 1] = p end
    end
  end
  return out
end

--- Expands arguments: files stay, folders give their images, "@list.txt"
-- and opts.list give the paths listed one per line (blank lines and lines
-- starting with # skipped).
function M.expand(args, opts)
  opts = opts or {}
  local out = {}
  local function list_file(path)
    local f, err = io.open(path, "r")
    if not f then error(("predict: cannot open list file '%s' (%s)"):format(path, tostring(err)), 0) end
    for line in f:lines() do
      line = line:gsub("%s+$", "")
      if line ~= "" and line:sub(1, 1) ~= "#" then out[#out + 1] = line end
    end
    f:close()
  end
  if opts.list then list_file(opts.list) end
  for _, a in ipairs(args) do
    if a:sub(1, 1) == "@" then list_file(a:sub(2))
    elseif lfs().attributes(a, "mode") == "directory" then M.folder(a, opts.recursive, out)
    else out[#out + 1] = a end
  end
  return out
end

--- A progress line on stderr: "[#####.....] 123/1000 images, 12.3 img/s, 1 failed".
function M.progress(total, opts)
  opts = opts or {}
  local t0 = require("adcorre").now()
  local last = -1
  local p = { done = 0, failed = 0 }
  local enabled = opts.enabled ~= false and total >= (opts.min_total or 20)
  function p:step(failed)
    self.done = self.done + 1
    if failed then self.failed = self.failed + 1 end
    if not enabled then return end
    local now = require("adcorre").now()
    if now - last < 0.25 and self.done < total then return end
    last = now
    local w = 30
    local k = math.floor(w * self.done / total)
    local rate = self.done / math.max(now - t0, 1e-9)
    io.stderr:write(("\r[%s%s] %d/%d %s, %.1f %s/s%s"):format(("#"):rep(k), ("."):rep(w - k), self.done, total,
      opts.unit or "images", rate, opts.rate_unit or "img", self.failed > 0 and (", %d failed"):format(self.failed) or ""))
    if self.done == total then io.stderr:write("\n") end
  end
  function p:rate() return self.done / math.max(require("adcorre").now() - t0, 1e-9) end
  return p
end

local function csv_field(v)
  if v == nil then return "" end
  local s = tostring(v)
  if s:find('[,"\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

--- A CSV writer with one row per face:
--   image,frame,time,face,x,y,w,h,detected,label,probability,uncertain,<class>...
-- rows are streamed to PATH.partial-<pid> and :close() renames it to PATH.
function M.csv(path, classes)
  local tmp = ("%s.partial-%d"):format(path, math.random(1, 1e9))
  local f, err = io.open(tmp, "w")
  if not f then error(("predict: cannot write '%s' (%s)"):format(path, tostring(err)), 0) end
  local head = { "image", "frame", "time", "face", "x", "y", "w", "h", "detected", "label", "probability", "uncertain" }
  for _, c in ipairs(classes) do head[#head + 1] = c end
  f:write(table.concat(head, ","), "\n")
  local w = { rows = 0 }
  function w:add(image, r, frame, time)
    for i, fc in ipairs(r.faces) do
      local row = { image, frame, time and ("%.3f"):format(time), i, fc.box[1], fc.box[2], fc.box[3], fc.box[4],
                    fc.detected and 1 or 0, fc.label, fc.label and ("%.6f"):format(fc.probabilities[fc.label]),
                    fc.uncertain and 1 or 0 }
      for _, c in ipairs(classes) do row[#row + 1] = fc.probabilities and ("%.6f"):format(fc.probabilities[c] or 0) end
      for k = 1, #head do row[k] = csv_field(row[k]) end
      f:write(table.concat(row, ",", 1, #head), "\n")
      self.rows = self.rows + 1
    end
  end
  function w:close()
    assert(f:close())
    local ok, e = os.rename(tmp, path)
    if not ok then error(("predict: cannot rename '%s' to '%s' (%s)"):format(tmp, path, tostring(e)), 0) end
  end
  function w:abort() f:close(); os.remove(tmp) end
  return w
end

--- The annotated picture's path for input `path`: OUT itself for one
-- input, else OUT/<name>.png (OUT is then a folder, made if missing).
function M.annotate_path(out, path, many)
  if not many then return out end
  if lfs().attributes(out, "mode") ~= "directory" then
    local ok, err = lfs().mkdir(out)
    if not ok then error(("predict: cannot make folder '%s' (%s)"):format(out, tostring(err)), 0) end
  end
  local base = path:match("([^/]+)$"):gsub("%.[%w]+$", "")
  return out .. "/" .. base .. ".png"
end

return M
