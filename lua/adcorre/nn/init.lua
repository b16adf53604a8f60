--- adcorre.nn: layers, containers and criteria (Torch7-flavoured).
--   local nn = require("adcorre").nn
--   local net = nn.Sequential()
--     :add(nn.Conv2d(1, 8, 3, 1, 1)):add(nn.BatchNorm2d(8)):add(nn.ReLU())
--     :add(nn.GlobalAvgPool2d()):add(nn.Linear(8, 7))
--   local logits = net:forward(x)
-- Every class lives in lua/adcorre/nn/<Name>.lua; see doc/nn.md.
local nn = {}

local classes = {
  "Module", "Container", "Criterion",
  "Sequential", "ConcatTable", "Concat", "JoinTable", "Add", "Identity",
  "Linear", "Conv2d", "SeparableConv2d",
  "BatchNorm", "BatchNorm1d", "BatchNorm2d",
  "ReLU", "Dropout", "L2Normalize", "SoftMax", "LogSoftMax",
  "Pool2d", "MaxPool2d", "AvgPool2d", "GlobalAvgPool2d",
  "CrossEntropyCriterion",
}
for _, name in ipairs(classes) do
  nn[name] = require("adcorre.nn." .. name)
end

-- Torch names
nn.CAddTable = nn.Add

--- nn.class(name [, parent]): a new module class (see adcorre.nn.Module).
nn.class = nn.Module.class
nn.initializers = require("adcorre.nn.initializers")

return nn
