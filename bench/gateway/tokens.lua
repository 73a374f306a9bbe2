-- Cycles through a file of distinct tokens, one per request (script argument: the file).
local tokens = {}
local i = 0

init = function(args)
  for line in io.lines(args[1]) do
    if #line > 0 then tokens[#tokens + 1] = "Bearer " .. line end
  end
  if #tokens == 0 then error("no tokens in " .. args[1]) end
end

request = function()
  i = i % #tokens + 1
  return wrk.format("GET", nil, { ["Authorization"] = tokens[i] })
end
-- The same RESULT line as every other run: load report.lua from beside this file.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
