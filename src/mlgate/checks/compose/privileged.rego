# METADATA
# title: "Compose service runs privileged"
# description: "privileged: true gives the container every capability and the host's devices."
# scope: package
# custom:
#   id: MLG-COMPOSE-002
#   avd_id: MLG-COMPOSE-002
#   severity: CRITICAL
#   recommended_action: "Remove privileged: true; add only the capabilities needed with cap_add."
#   input:
#     selector:
#     - type: yaml
package user.compose.privileged

import rego.v1

import data.user.compose.lib

deny contains res if {
	some [name, svc] in lib.services
	lib.text(object.get(svc, "privileged", false)) == "true"
	res := result.new(sprintf("service %s sets privileged: true", [name]), lib.at(name))
}
