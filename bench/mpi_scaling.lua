--- bench/mpi_scaling.lua - the expected scaling efficiency of data-parallel
-- training (doc/distributed.md), from a cost model and measured inputs:
--
--   lua5.4 bench/mpi_scaling.lua [alpha_us]
--
-- Per step and rank, with R ranks, per-rank batch b, global batch B = R b:
--   compute   T_c          the single-rank step at batch b (measured)
--   gradients ring allreduce of S bytes: 2 (R-1)/R S / BW + 2 (R-1) alpha
--   loss      ring allgather of b (C + k d + 1) 4 bytes per rank:
--             (R-1) b (C + k d + 1) 4 / BW + (R-1) alpha
--   batch norm 3 small allreduces per layer (recursive doubling):
--             3 L log2(R) alpha
--   global loss the Ad-Corre loss on B rows instead of b on every rank:
--             T_loss(B) - T_loss(b), T_loss(B) = c B^2 (FD's products)
-- Efficiency = T_c / (T_c + all the rest): nothing overlaps (the
-- allreduce runs after the backward). Inputs are the figures of
-- doc/distributed.md; alpha (latency per message) defaults to 10 us.
local alpha = (tonumber(arg[1]) or 10) * 1e-6
local C, k, d = 7, 10, 256
local c_loss = 1.771 / 1600 ^ 2 -- s per row^2: B = 1600 in 1.77 s (1 thread, load 18)
local models = {
  { name = "mini-Xception", step = 50 / 2050, grad = 397047 * 4, bn = 14 },
  { name = "Xception", step = 50 / 9.05, grad = 26070319 * 4, bn = 40 },
}
local b = 50
local nets = { 10, 25, 100 }
local function log2(x) return math.log(x) / math.log(2) end
print(("| model (b = %d per rank) | ranks | global batch | 10 Gb/s | 25 Gb/s | 100 Gb/s | same, loss of the global batch excluded (10 / 25 / 100) |"):format(b))
print("|---|---|---|---|---|---|---|")
for _, m in ipairs(models) do
  for _, R in ipairs({ 8, 32, 128 }) do
    local with, without = {}, {}
    for i, gbps in ipairs(nets) do
      local BW = gbps * 1e9 / 8
      local ar = 2 * (R - 1) / R * m.grad / BW + 2 * (R - 1) * alpha
      local ag = (R - 1) * b * (C + k * d + 1) * 4 / BW + (R - 1) * alpha
      local bn = 3 * m.bn * log2(R) * alpha
      local gl = c_loss * ((R * b) ^ 2 - b ^ 2)
      with[i] = ("%.0f %%"):format(100 * m.step / (m.step + ar + ag + bn + gl))
      without[i] = ("%.0f"):format(100 * m.step / (m.step + ar + ag + bn))
    end
    print(("| %s | %d | %d | %s | %s | %s | %s %% |"):format(m.name, R, R * b, with[1], with[2], with[3],
      table.concat(without, " / ")))
  end
end
