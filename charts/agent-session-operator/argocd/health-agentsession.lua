-- Argo CD health check for agentsession.dev/AgentSession
-- (argocd-cm key: resource.customizations.health.agentsession.dev_AgentSession; docs/gitops.md).
--
-- Reads what the operator writes, kstatus-style: status.observedGeneration (has the operator seen
-- the current spec?), status.phase and the Ready condition (the summary), plus status.health.
--   Running and Ready, Completed             -> Healthy
--   Pending, Creating, Stopping, Terminating,
--   Running not Ready yet, spec not observed -> Progressing
--   Stopped (spec.state Stopped, idle stop)  -> Suspended
--   Failed, Running with an Unhealthy agent  -> Degraded
-- Lua 5.1 (Argo CD's gopher-lua), tested with a real Lua 5.1 on the operator's real status objects
-- (tests/deploy/test_argocd_health.py).
local hs = {}

local function condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function describe(c, default)
  if c == nil or c.message == nil or c.message == "" then
    return default
  end
  if c.reason ~= nil and c.reason ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.message
end

local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to pick up the session"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local phase = status.phase
local ready = condition(status, "Ready")
hs.message = describe(ready, phase)

if phase == "Running" then
  if ready ~= nil and ready.status == "True" then
    hs.status = "Healthy"
  elseif status.health ~= nil and status.health.state == "Unhealthy" then
    hs.status = "Degraded"
    if status.health.message ~= nil and status.health.message ~= "" then
      hs.message = "Unhealthy: " .. status.health.message
    end
  else
    hs.status = "Progressing"
  end
elseif phase == "Completed" then
  hs.status = "Healthy"
elseif phase == "Stopped" then
  hs.status = "Suspended"
  if status.stoppedReason ~= nil then
    hs.message = "Stopped (" .. status.stoppedReason .. "): " .. hs.message
  end
elseif phase == "Failed" then
  hs.status = "Degraded"
elseif phase == "Pending" or phase == "Creating" or phase == "Stopping" or phase == "Terminating" then
  hs.status = "Progressing"
  local provider = condition(status, "ProviderAvailable")
  if provider ~= nil and provider.status == "False" then
    hs.message = describe(provider, hs.message)
  end
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. phase
end
return hs
