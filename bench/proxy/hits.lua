-- wrk script: POST chat completions drawn from N distinct prompts (all
-- cached by the warm-up), each with the same tenant key.
local n = tonumber(os.getenv("PROMPTS") or "1000")
-- MODE=semantic rewords every cached question ("how do I" -> "how can I"):
-- each request is then a semantic hit.
local verb = os.getenv("MODE") == "semantic" and "how can I" or "how do I"
local bodies = {}
for i = 1, n do
  bodies[i] = string.format(
    '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a support assistant for Acme."},' ..
    '{"role":"user","content":"Question number %d: %s configure feature %d on my router?"}],"temperature":0}', i, verb, i)
end
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer sk-bench-tenant"}
local i = 0
request = function()
  i = i % n + 1
  return wrk.format("POST", "/v1/chat/completions", headers, bodies[i])
end
-- run.sh prints the proxy's /metrics after the run: every request must
-- be counted as a HIT there.
