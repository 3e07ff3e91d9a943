{{- define "sprig.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "sprig.labels" -}}
app: {{ include "sprig.name" . }}
chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}
