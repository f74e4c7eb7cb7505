# METADATA
# title: "Compose service has a writable root filesystem"
# description: "Without read_only: true, code execution in the container can rewrite its binaries and model files."
# scope: package
# custom:
#   id: MLG-COMPOSE-005
#   avd_id: MLG-COMPOSE-005
#   severity: MEDIUM
#   recommended_action: "Set read_only: true and mount the writable paths as tmpfs or volumes."
#   input:
#     selector:
#     - type: yaml
package user.compose.read_only

import rego.v1

import data.user.compose.lib

deny contains res if {
	some [name, svc] in lib.services
	lib.text(object.get(svc, "read_only", false)) != "true"
	res := result.new(sprintf("service %s does not set read_only: true", [name]), lib.at(name))
}
