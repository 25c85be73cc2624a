{{/* Chart name, release-scoped full name, labels. */}}
{{- define "kvchat.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kvchat.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kvchat.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kvchat.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kvchat.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kvchat.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kvchat
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of one component: `include "kvchat.componentLabels" (list . "api")`. */}}
{{- define "kvchat.componentLabels" -}}
{{ include "kvchat.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "kvchat.componentSelector" -}}
{{ include "kvchat.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "kvchat.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "kvchat.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kvchat.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kvchat.secretName" -}}
{{- default (include "kvchat.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* Names of the in-chart services. */}}
{{- define "kvchat.simulatorName" -}}{{ include "kvchat.fullname" . }}-simulator{{- end -}}
{{- define "kvchat.vllmName" -}}{{ include "kvchat.fullname" . }}-vllm{{- end -}}
{{- define "kvchat.devPostgresName" -}}{{ include "kvchat.fullname" . }}-dev-postgres{{- end -}}
{{- define "kvchat.devRedisName" -}}{{ include "kvchat.fullname" . }}-dev-redis{{- end -}}

{{/*
INFERENCE_ENDPOINTS: one base URL per engine replica. vLLM replicas are addressed through the
headless Service (pod-0.service...), so kvchat's router sees each one and keeps a conversation where
its KV blocks are.
*/}}
{{- define "kvchat.inferenceEndpoints" -}}
{{- $urls := list -}}
{{- if eq .Values.engine.mode "external" -}}
{{- $urls = .Values.engine.external.endpoints -}}
{{- else if eq .Values.engine.mode "simulator" -}}
{{- range $i := until (int .Values.engine.simulator.replicas) -}}
{{- $urls = append $urls (printf "http://%s:%d/v1" (include "kvchat.simulatorName" $) (add 8000 $i)) -}}
{{- end -}}
{{- else -}}
{{- $name := include "kvchat.vllmName" . -}}
{{- range $i := until (int .Values.engine.vllm.replicas) -}}
{{- $urls = append $urls (printf "http://%s-%d.%s.%s.svc:%d/v1" $name $i $name $.Release.Namespace (int $.Values.engine.vllm.port)) -}}
{{- end -}}
{{- end -}}
{{- join "," $urls -}}
{{- end -}}

{{/* Refuses values that would break a promise of the chart. */}}
{{- define "kvchat.validate" -}}
{{- $drainSeconds := div (add (int .Values.config.shutdownDrainMs) 999) 1000 -}}
{{- if le (int .Values.api.terminationGracePeriodSeconds) (add (int .Values.api.preStopSleepSeconds) $drainSeconds) -}}
{{- fail (printf "api.terminationGracePeriodSeconds (%d) must exceed api.preStopSleepSeconds (%d) + config.shutdownDrainMs (%d s): the pod would be killed mid-drain" (int .Values.api.terminationGracePeriodSeconds) (int .Values.api.preStopSleepSeconds) $drainSeconds) -}}
{{- end -}}
{{- if le (int .Values.worker.terminationGracePeriodSeconds) $drainSeconds -}}
{{- fail (printf "worker.terminationGracePeriodSeconds (%d) must exceed config.shutdownDrainMs (%d s)" (int .Values.worker.terminationGracePeriodSeconds) $drainSeconds) -}}
{{- end -}}
{{- if and (eq .Values.engine.mode "external") (empty .Values.engine.external.endpoints) -}}
{{- fail "engine.mode=external needs engine.external.endpoints" -}}
{{- end -}}
{{- if not .Values.secrets.existingSecret -}}
{{- if not .Values.secrets.serverSecret -}}
{{- fail "set secrets.serverSecret (the same on every pod: it derives each tenant's cache_salt) or secrets.existingSecret" -}}
{{- end -}}
{{- if and (not .Values.dev.enabled) (or (not .Values.secrets.databaseUrl) (not .Values.secrets.redisUrl)) -}}
{{- fail "set secrets.databaseUrl and secrets.redisUrl (external PostgreSQL with pgvector, and Redis), or secrets.existingSecret; dev.enabled=true runs both in the release for a trial" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Environment shared by api, worker and migrations: the ConfigMap and the Secret. */}}
{{- define "kvchat.envFrom" -}}
- configMapRef:
    name: {{ include "kvchat.fullname" . }}
- secretRef:
    name: {{ include "kvchat.secretName" . }}
{{- end -}}

{{/* The writable path of a read-only root filesystem (DATA_DIR and TMPDIR). */}}
{{- define "kvchat.dataVolume" -}}
- name: data
  emptyDir:
    sizeLimit: 256Mi
{{- end -}}
{{- define "kvchat.dataVolumeMount" -}}
- name: data
  mountPath: /var/lib/kvchat
{{- end -}}

{{/* Dev mode: wait for the in-chart PostgreSQL, then apply migrations (no hook: it would run before the database exists). */}}
{{- define "kvchat.devMigrateInitContainer" -}}
{{- if .Values.dev.enabled -}}
initContainers:
  - name: migrate
    image: {{ include "kvchat.image" . }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    command: ["node", "dist/src/migrate.js"]
    envFrom:
      {{- include "kvchat.envFrom" . | nindent 6 }}
    securityContext:
      {{- toYaml .Values.securityContext | nindent 6 }}
    volumeMounts:
      {{- include "kvchat.dataVolumeMount" . | nindent 6 }}
{{- end }}
{{- end -}}
