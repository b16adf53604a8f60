-- adcorre.distributed outside mpirun: what needs no MPI job (the collectives
-- themselves run on 2 ranks in spec_mpi/, `make test-mpi`).
local ac = require("adcorre")

describe("adcorre.distributed without MPI", function()
  it("require names the Debian packages when the MPI binding is missing", function()
    local saved_cpath, saved = package.cpath, package.loaded["adcorre.distributed_core"]
    package.loaded["adcorre.distributed"], package.loaded["adcorre.distributed_core"] = nil, nil
    package.cpath = "/nonexistent/?.so"
    local ok, err = pcall(require, "adcorre.distributed")
    package.cpath, package.loaded["adcorre.distributed_core"] = saved_cpath, saved
    package.loaded["adcorre.distributed"] = nil
    assert.is_false(ok)
    assert.matches("openmpi%-bin", err)
    assert.matches("libopenmpi%-dev", err)
  end)

  it("AdCorreLoss{distributed = false} is the ordinary loss; a non-boolean is refused", function()
    local l = ac.AdCorreLoss{ classes = 3, distributed = false }
    assert.are.equal(require("adcorre.loss"), getmetatable(l))
    local ok, err = pcall(ac.AdCorreLoss, { classes = 3, distributed = "yes" })
    assert.is_false(ok)
    assert.matches("'distributed' must be a boolean", err)
  end)
end)
