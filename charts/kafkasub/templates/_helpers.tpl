{{/*
kafkasub.name is the chart name, or nameOverride.
*/}}
{{- define "kafkasub.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
kafkasub.fullname prefixes every resource: "<release>-<chart>", or just the release name
when it already contains the chart name. Truncated so that suffixes such as
"-metrics-reader" still fit the 63-character label limit.
*/}}
{{- define "kafkasub.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
kafkasub.chart is "<chart>-<version>" for the helm.sh/chart label.
*/}}
{{- define "kafkasub.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
kafkasub.labels are put on every object the chart creates.
*/}}
{{- define "kafkasub.labels" -}}
helm.sh/chart: {{ include "kafkasub.chart" . }}
{{ include "kafkasub.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kafkasub
{{- end }}

{{/*
kafkasub.selectorLabels select the operator pods; they never change across upgrades.
*/}}
{{- define "kafkasub.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kafkasub.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: manager
{{- end }}

{{/*
kafkasub.serviceAccountName is the operator's ServiceAccount.
*/}}
{{- define "kafkasub.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kafkasub.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
kafkasub.image is the operator image: repository with the digest, the tag, or the chart's
appVersion.
*/}}
{{- define "kafkasub.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
kafkasub.consumerImage is the default image of consumer pods.
*/}}
{{- define "kafkasub.consumerImage" -}}
{{- default (include "kafkasub.image" .) .Values.consumerImage }}
{{- end }}

{{/*
kafkasub.leaderElect is "true" when leader election is on: asked for, or needed because
more than one replica runs.
*/}}
{{- define "kafkasub.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{- end }}
{{- end }}
