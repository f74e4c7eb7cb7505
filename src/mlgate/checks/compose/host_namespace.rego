# METADATA
# title: "Compose service shares a host namespace"
# description: "network_mode, pid or ipc set to host removes the container's network, process or IPC isolation."
# scope: package
# custom:
#   id: MLG-COMPOSE-003
#   avd_id: MLG-COMPOSE-003
#   severity: HIGH
#   recommended_action: "Remove network_mode/pid/ipc: host; publish only the ports needed."
#   input:
#     selector:
#     - type: yaml
package user.compose.host_namespace

import rego.v1

import data.user.compose.lib

deny contains res if {
	some [name, svc] in lib.services
	some key in ["network_mode", "pid", "ipc"]
	lib.text(object.get(svc, key, "")) == "host"
	res := result.new(sprintf("service %s sets %s: host", [name, key]), lib.at(name))
}
