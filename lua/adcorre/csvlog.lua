--- adcorre.csvlog: the training log as a CSV file that survives crashes and
-- resumes (CSVLog), and the reader of such files (read_csv); reached as
-- ac.metrics.CSVLog and ac.metrics.read_csv.
local metrics = {}

local fmt = string.format

local function csv_cell(v)
  if v == nil then return "" end
  local s
  if math.type(v) == "integer" then s = fmt("%d", v)
  elseif type(v) == "number" then
    if v ~= v then s = "nan"
    elseif v == math.huge then s = "inf"
    elseif v == -math.huge then s = "-inf"
    else s = fmt("%.10g", v) end
  elseif type(v) == "boolean" then s = tostring(v)
  elseif type(v) == "string" then s = v
  else error("CSVLog:write: cannot write a value of type " .. type(v), 3) end
  if s:find('[,"\r\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

-- Splits one CSV record (RFC 4180 quoting, no embedded newlines); nil when malformed.
local function csv_split(line)
  local out, field, i, n, inq = {}, {}, 1, #line, false
  while i <= n do
    local ch = line:sub(i, i)
    if inq then
      if ch == '"' then
        if line:sub(i + 1, i + 1) == '"' then field[#field + 1] = '"'; i = i + 1
        else inq = false end
      else
        field[#field + 1] = ch
      end
    elseif ch == '"' then
      inq = true
    elseif ch == "," then
      out[#out + 1] = table.concat(field); field = {}
    else
      field[#field + 1] = ch
    end
    i = i + 1
  end
  if inq then return nil end
  out[#out + 1] = table.concat(field)
  return out
end

local function cell_value(s)
  if s == "" then return nil end
  local n = tonumber(s)
  if n then return n end
  if s == "nan" then return 0 / 0 elseif s == "inf" then return math.huge elseif s == "-inf" then return -math.huge end
  return s
end

--- Reads a CSV file written by CSVLog: returns columns (array) and rows
-- (array of tables keyed by column; numbers are converted, empty cells are nil).
function metrics.read_csv(path)
  local f, err = io.open(path, "rb")
  if not f then error("read_csv: cannot open " .. tostring(err), 2) end
  local data = f:read("a")
  f:close()
  local lines = {}
  for line in data:gmatch("([^\n]*)\n") do lines[#lines + 1] = line:gsub("\r$", "") end
  if #lines == 0 then error(fmt("read_csv: %s has no header line", path), 2) end
  local cols = csv_split(lines[1])
  if not cols then error(fmt("read_csv: %s line 1: malformed header", path), 2) end
  local rows = {}
  for ln = 2, #lines do
    if lines[ln] ~= "" then
      local cells = csv_split(lines[ln])
      if not cells or #cells ~= #cols then
        error(fmt("read_csv: %s line %d: expected %d cells, got %s", path, ln, #cols,
          cells and tostring(#cells) or "a malformed line"), 2)
      end
      local row = {}
      for k, c in ipairs(cols) do row[c] = cell_value(cells[k]) end
      rows[#rows + 1] = row
    end
  end
  return cols, rows
end

local CSVLog = {}
CSVLog.__index = CSVLog
CSVLog.__name = "adcorre.metrics.CSVLog"

-- Replaces the whole file crash-safely (temporary name + fsync + rename, in
-- place when the path is a device), through the library's file writer.
local function write_all_atomic(path, text)
  local ok, err = pcall(require("adcorre.core").io.write_file_atomic, path, text)
  if not ok then error("CSVLog: " .. tostring(err):gsub("^[^:]*%.lua:%d+: ", ""), 3) end
end

--- CSVLog(path, columns [, opts]): a CSV file with a header line; each
-- :write(row) appends one line and flushes it.
-- When the file exists with the same header its rows are kept (resume); a
-- trailing partial line (from a crash mid-write) is dropped. opts:
--   fresh = true        start a new file even if one exists
--   keep = function(row) -> boolean   on resume, keep only the rows it accepts
--                        (e.g. rows up to the epoch of the checkpoint)
-- An existing file with a different header is an error unless fresh = true.
function metrics.CSVLog(path, columns, opts)
  opts = opts or {}
  if type(path) ~= "string" or path == "" then error("CSVLog: path must be a non-empty string", 2) end
  if type(columns) ~= "table" or #columns == 0 then error("CSVLog: columns must be a non-empty array of names", 2) end
  local seen = {}
  for i, c in ipairs(columns) do
    if type(c) ~= "string" or c == "" then error(fmt("CSVLog: column %d must be a non-empty string", i), 2) end
    if seen[c] then error(fmt("CSVLog: column '%s' appears twice", c), 2) end
    seen[c] = true
  end
  local header_cells = {}
  for i, c in ipairs(columns) do header_cells[i] = csv_cell(c) end
  local header = table.concat(header_cells, ",")
  local self = setmetatable({ path = path, columns = table.move(columns, 1, #columns, 1, {}),
    colset = seen, rows = {} }, CSVLog)

  local existing = (not opts.fresh) and io.open(path, "rb")
  if existing then
    local data = existing:read("a") or ""
    existing:close()
    local first = data:match("^([^\n]*)\n")
    if first then first = first:gsub("\r$", "") end
    if data ~= "" and first ~= header then
      error(fmt("CSVLog: %s exists with header '%s', expected '%s' (pass fresh = true to replace it)",
        path, first or data:sub(1, 80), header), 2)
    end
    -- Keep complete lines only; filter with opts.keep.
    local keep_lines, dropped = { header }, (data ~= "" and data:sub(-1) ~= "\n")
    local ln = 0
    for line in data:gmatch("([^\n]*)\n") do
      ln = ln + 1
      line = line:gsub("\r$", "")
      if ln > 1 and line ~= "" then
        local cells = csv_split(line)
        if cells and #cells == #columns then
          local row = {}
          for k, c in ipairs(columns) do row[c] = cell_value(cells[k]) end
          if not opts.keep or opts.keep(row) then
            keep_lines[#keep_lines + 1] = line
            self.rows[#self.rows + 1] = row
          else
            dropped = true
          end
        else
          dropped = true
        end
      end
    end
    if data == "" or dropped then write_all_atomic(path, table.concat(keep_lines, "\n") .. "\n") end
  else
    write_all_atomic(path, header .. "\n")
  end
  local f, err = io.open(path, "ab")
  if not f then error("CSVLog: cannot open " .. tostring(err), 2) end
  f:setvbuf("full")
  self.file = f
  return self
end

--- Appends one row (a table keyed by column name; missing columns are left
-- empty; unknown keys are an error) and flushes it to the file.
function CSVLog:write(row)
  if not self.file then error("CSVLog:write: the log is closed", 2) end
  if type(row) ~= "table" then error("CSVLog:write: row must be a table keyed by column name", 2) end
  for k in pairs(row) do
    if not self.colset[k] then
      error(fmt("CSVLog:write: unknown column '%s' (columns: %s)", tostring(k), table.concat(self.columns, ", ")), 2)
    end
  end
  local cells, copy = {}, {}
  for i, c in ipairs(self.columns) do cells[i] = csv_cell(row[c]); copy[c] = row[c] end
  local ok, err = self.file:write(table.concat(cells, ","), "\n")
  if ok then ok, err = self.file:flush() end
  if not ok then error("CSVLog:write: " .. self.path .. ": " .. tostring(err), 2) end
  self.rows[#self.rows + 1] = copy
  return self
end

--- The rows written so far, including those kept from an existing file.
function CSVLog:get_rows() return self.rows end

--- The values of one column as an array (rows without a value are skipped).
function CSVLog:column(name)
  if not self.colset[name] then error(fmt("CSVLog:column: unknown column '%s'", tostring(name)), 2) end
  local out = {}
  for _, r in ipairs(self.rows) do if r[name] ~= nil then out[#out + 1] = r[name] end end
  return out
end

function CSVLog:close()
  if self.file then self.file:close(); self.file = nil end
end
CSVLog.__close = CSVLog.close
CSVLog.__gc = CSVLog.close

metrics.CSVLogClass = CSVLog

return metrics
