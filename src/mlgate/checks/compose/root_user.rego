# METADATA
# title: "Compose service runs as root"
# description: "A service without a non-root user runs its process as root (UID 0) in the container."
# scope: package
# custom:
#   id: MLG-COMPOSE-001
#   avd_id: MLG-COMPOSE-001
#   severity: HIGH
#   recommended_action: "Set user to a non-root UID:GID, e.g. user: \"10001:10001\"."
#   input:
#     selector:
#     - type: yaml
package user.compose.root_user

import rego.v1

import data.user.compose.lib

root(svc) if not svc.user

root(svc) if split(lib.text(svc.user), ":")[0] in {"root", "0", ""}

deny contains res if {
	some [name, svc] in lib.services
	root(svc)
	res := result.new(sprintf("service %s runs as root", [name]), lib.at(name))
}
