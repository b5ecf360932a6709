-- Argo CD health check for agentsession.dev/SessionTemplate
-- (argocd-cm key: resource.customizations.health.agentsession.dev_SessionTemplate; docs/gitops.md).
--
-- A SessionTemplate is configuration only: it has no status, and whether it is valid is reported
-- on the sessions that use it (their ConfigValid condition). Without this check Argo CD shows no
-- health for it; with it, a synced template is Healthy.
local hs = {}
hs.status = "Healthy"
hs.message = "Configuration only; the sessions using it report its validity (ConfigValid)"
return hs
