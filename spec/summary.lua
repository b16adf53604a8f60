-- spec/summary.lua - busted output handler: the plain terminal report, then
-- one closing line "N passed, N failed" (failures and errors both count as
-- failed). This is the line CI reads.
return function(options)
  local busted = require 'busted'
  local handler = require 'busted.outputHandlers.plainTerminal'(options)
  busted.subscribe({ 'suite', 'end' }, function()
    local failed = handler.failuresCount + handler.errorsCount
    io.write(string.format('%d passed, %d failed\n', handler.successesCount, failed))
    io.flush()
    return nil, true
  end)
  return handler
end
