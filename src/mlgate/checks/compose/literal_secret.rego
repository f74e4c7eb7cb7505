# METADATA
# title: "Compose service holds a literal secret in its environment"
# description: "A password, token or key written into the compose file lives in version control and in docker inspect."
# scope: package
# custom:
#   id: MLG-COMPOSE-007
#   avd_id: MLG-COMPOSE-007
#   severity: CRITICAL
#   recommended_action: "Use compose secrets, an env_file kept out of the repository, or ${VARIABLE} interpolation."
#   input:
#     selector:
#     - type: yaml
package user.compose.literal_secret

import rego.v1

import data.user.compose.lib

secret_name(key) if regex.match(`(?i)(^|_)(password|passwd|pwd|secret|token|api_?key|access_?key|secret_?key|private_?key|credentials?)$`, key)

# $VAR, ${VAR}, ${VAR:?error} / ${VAR?error} (required) and ${VAR:-} / ${VAR-} (empty default) are filled in
# from the host at run time: not a literal. A non-empty default (${VAR:-hunter2}) is one.
reference(value) if regex.match(`^\$(\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*|:?-)?\}|[A-Za-z_][A-Za-z0-9_]*)$`, value)

# The message names the variable, never its value.
deny contains res if {
	some [name, svc] in lib.services
	some key, value in lib.environment(svc)
	secret_name(key)
	is_string(value)
	value != ""
	not reference(value)
	res := result.new(sprintf("service %s sets %s to a literal value", [name, key]), lib.at(name))
}
