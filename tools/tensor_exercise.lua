--- tools/tensor_exercise.lua - a walk through the tensor API for the leak check
-- (tools/valgrind_check.sh): construction, views, copies, broadcasting
-- arithmetic, maths, reductions, products, linalg, random numbers, .npy files,
-- to-be-closed tensors and errors raised from every kind of argument check
-- (an error must not leak what the binding allocated before it).
--
--   lua5.4 tools/tensor_exercise.lua [rounds]     (from the repository root, after make)
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local ac = require("adcorre")

local rounds = tonumber(arg[1]) or 3
local tmp = os.tmpname()
local errors = 0

local function expect_error(f, ...)
  local ok = pcall(f, ...)
  assert(not ok, "an error was expected")
  errors = errors + 1
end

ac.set_num_threads(2)
ac.manual_seed(1)
for round = 1, rounds do
  -- construction
  local a = ac.randn(64, 48)
  local b = ac.rand(48, 32)
  local z, o, e = ac.zeros(3, 4), ac.ones(2, 2), ac.empty(5)
  local f = ac.full({2, 3}, 7)
  local r, eye = ac.arange(1, 10, 0.5), ac.eye(4)
  local t = ac.tensor({{1, 2, 3}, {4, 5, 6}})
  local ti = ac.tensor({1, 2, 3}, "int64")
  local tb = ac.tensor({1, 0, 255}, "uint8")
  local perm = ac.randperm(20)
  -- inspection and printing
  local _ = a:shape(), a:size(2), a:dim(), a:numel(), a:dtype(), a:stride(1), a:is_contiguous()
  _ = tostring(a), tostring(ti), tostring(tb), tostring(ac.randn(200, 200)), #a, t:totable(), t[2][3]
  -- views
  local v = a:view(48, 64):transpose(1, 2):narrow(1, 3, 10):select(2, 5)
  local p = ac.randn(2, 3, 4):permute(3, 1, 2):unsqueeze(1):squeeze(1)
  local x = ac.randn(3, 1):expand(3, 5)
  local rs = a:t():reshape(-1)
  -- copies
  local c = p:contiguous():clone()
  c:copy(ac.randn(4, 2, 3))
  c:fill(2):zero()
  local cat = ac.cat({a, a}, 1)
  local st = ac.stack({b, b, b}, 2)
  local sel = a:index_select(1, ac.tensor({1, 5, 9}, "int64"))
  local conv = ti:float():long():byte()
  a[3][4] = 5
  -- arithmetic with broadcasting
  local y = ac.randn(4, 1, 5) + ac.randn(3, 1) - 2 * ac.randn(3, 5) / (ac.rand(3, 5) + 1)
  y = -y ^ 2
  y:add_(ac.randn(4, 3, 5), 0.5):mul_(3):div_(2):sub_(1)
  local m2 = ac.maximum(y, 0) + ac.minimum(y, 0)
  -- maths
  local q = ac.rand(10, 10) + 0.1
  local _m = {q:exp(), q:log(), q:sqrt(), q:rsqrt(), q:abs(), q:sign(), q:neg(), q:sigmoid(), q:tanh(),
    q:relu(), q:square(), q:log1p(), q:reciprocal(), q:floor(), q:ceil(), q:round(), q:clamp(0.2, 0.8),
    q:clamp(nil, 0.5)}
  q:exp_():log_()
  -- comparisons
  local cmp = {y:eq(y), y:ne(0), y:lt(1), y:le(1), y:gt(0), y:ge(0), y:equal(y), y:allclose(y, 1e-5, 1e-8)}
  -- reductions
  local s = a:sum() + a:mean() + a:sum(1):sum() + a:mean(2, true):sum()
  local mx, imx = a:max(2)
  local mn, imn = a:min()
  local am, ag = a:argmax(1), a:argmin(2)
  local va, sd, nr = a:var(1), a:std(2, false), a:norm() + a:norm(1, 2):sum()
  local pr = ac.rand(5):prod()
  -- products
  local mm = ac.matmul(a, b)
  local mt = ac.matmul(b:t(), a:t())
  local bm = ac.bmm(ac.randn(4, 8, 6), ac.randn(4, 6, 5))
  local am2 = ac.addmm(ac.randn(64, 32), a, b, 0.5, 2)
  mm:addmm_(a, b, 1, 1)
  local dt = ac.dot(ac.randn(100), ac.randn(100))
  local mv = ac.matmul(a, ac.randn(48))
  -- linalg
  local g = ac.randn(6, 6)
  local sym = ac.matmul(g, g:t()) + ac.eye(6)
  local ev, evec = ac.linalg.eigh(sym)
  local U, S, Vt = ac.linalg.svd(ac.randn(8, 5))
  local sol = ac.linalg.solve(sym, ac.randn(6, 2))
  local inv = ac.linalg.inv(sym)
  -- random
  local rng = ac.get_rng_state()
  ac.randn(10):uniform_(-1, 1):normal_(0, 2):bernoulli_(0.3)
  ac.set_rng_state(rng)
  -- files
  ac.save_npy(tmp, a)
  local back = ac.load_npy(tmp)
  assert(back:equal(a))
  ac.save_npy(tmp, ti, "int32")
  back = ac.load_npy(tmp)
  -- to-be-closed
  do
    local big <close> = ac.zeros(1000, 1000)
    big:fill(1)
  end
  -- errors from argument checks, after some allocation in the binding
  expect_error(function() return ac.randn(2, 3) + ac.randn(4) end)
  expect_error(function() return ac.matmul(ac.randn(3, 4), ac.randn(5, 6)) end)
  expect_error(function() return a:view(7, 7) end)
  expect_error(function() return a:narrow(1, 60, 10) end)
  expect_error(function() return a:select(3, 1) end)
  expect_error(function() return a[100] end)
  expect_error(function() return ac.zeros(-1, 2) end)
  expect_error(function() return ac.cat({a, b}, 1) end)
  expect_error(function() return ac.tensor({1, "x"}) end)
  expect_error(function() return ac.load_npy("/nonexistent/file.npy") end)
  expect_error(function() return ac.linalg.eigh(ac.randn(3, 4)) end)
  expect_error(function() return a:index_select(1, ac.tensor({100}, "int64")) end)
  local bad = io.open(tmp, "wb")
  bad:write("\147NUMPY\1\0\20\0{'descr': '<f4', 'fo")
  bad:close()
  expect_error(function() return ac.load_npy(tmp) end)
  collectgarbage()
  collectgarbage()
  io.write(("round %d: sum %.4f, %d errors raised so far\n"):format(round, s, errors))
end
os.remove(tmp)
print("tensor_exercise: done")
