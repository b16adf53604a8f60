--- adcorre.fs: folders, through lua-filesystem (lfs).
--   fs.mkdir_p(path)   -> true | nil, message   (mkdir -p: parents too)
--   fs.listdir(path)   -> names, is_dir         (sorted by name; "." and ".."
--                        left out; is_dir follows symbolic links)
-- listdir raises "<path>: cannot open folder (<reason>)" when the folder
-- cannot be read.
local lfs = require("lfs")

local fs = {}

function fs.mkdir_p(path)
  local mode = lfs.attributes(path, "mode")
  if mode == "directory" then return true end
  if mode then return nil, path .. " exists and is not a folder" end
  local parent = path:match("^(.*[^/])/+[^/]+/*$")
  if parent then
    local ok, err = fs.mkdir_p(parent)
    if not ok then return nil, err end
  end
  local ok, err = lfs.mkdir(path)
  -- (another process may have made it meanwhile)
  if not ok and lfs.attributes(path, "mode") ~= "directory" then return nil, err end
  return true
end

function fs.listdir(path)
  local ok, iter, state = pcall(lfs.dir, path)
  if not ok then
    local reason = tostring(iter):match(": ([^:]+)$") or tostring(iter)
    error(("%s: cannot open folder (%s)"):format(path, reason), 0)
  end
  local names = {}
  for name in iter, state do
    if name ~= "." and name ~= ".." then names[#names + 1] = name end
  end
  table.sort(names)
  local dirs = {}
  local prefix = path:sub(-1) == "/" and path or path .. "/"
  for i, name in ipairs(names) do
    dirs[i] = lfs.attributes(prefix .. name, "mode") == "directory"
  end
  return names, dirs
end

return fs
