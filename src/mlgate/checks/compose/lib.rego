# Helpers of mlgate's docker-compose checks: not a check itself (no deny rule, no METADATA).
package user.compose.lib

import rego.v1

# Every service of a compose file; any other YAML (Kubernetes, CI files) has no services mapping.
services contains [name, svc] if {
	is_object(input.services)
	some name, svc in input.services
	is_object(svc)
}

# labels and environment come as a mapping or as a list of "KEY=value" strings.
as_map(x) := x if is_object(x)

as_map(x) := {key: value |
	some item in x
	parts := split(sprintf("%v", [item]), "=")
	key := parts[0]
	value := concat("=", array.slice(parts, 1, count(parts)))
} if is_array(x)

labels(svc) := as_map(object.get(svc, "labels", {}))

environment(svc) := as_map(object.get(svc, "environment", {}))

text(value) := lower(trim_space(sprintf("%v", [value])))

serving(svc) if text(labels(svc)["mlgate.serving"]) == "true"

# The location trivy reports: the file plus "services.<name>" (compose YAML carries no line metadata).
at(name) := {"__defsec_metadata": {"resource": sprintf("services.%s", [name])}}

# Values of the mlgate.auth label that declare an authentication method.
auth_methods := {"oidc", "token", "mtls", "basic", "apikey"}
