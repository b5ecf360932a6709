{{- /*
OpenTelemetry tracing (docs/monitoring.md#tracing): the standard OTEL_* variables of one
component's container, with tracing.enabled. Off, nothing is set and the process loads nothing of
OpenTelemetry. Call with (dict "root" $ "suffix" ""|"-gateway"): the service name is the fullname
plus the suffix.
*/ -}}
{{- define "agent-session-operator.tracingEnv" -}}
{{- $tracing := .root.Values.tracing }}
{{- if $tracing.enabled }}
- name: OTEL_TRACES_EXPORTER
  value: otlp
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: http/protobuf
{{- with $tracing.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "%s%s" (include "agent-session-operator.fullname" .root) .suffix | quote }}
- name: OTEL_TRACES_SAMPLER
  value: parentbased_traceidratio
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $tracing.samplingRatio | toString | quote }}
{{- end }}
{{- end }}
