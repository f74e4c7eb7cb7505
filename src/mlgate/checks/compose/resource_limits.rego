# METADATA
# title: "Compose service has no resource limits"
# description: "Without a memory and a CPU limit one service, or one expensive request, can starve the host."
# scope: package
# custom:
#   id: MLG-COMPOSE-006
#   avd_id: MLG-COMPOSE-006
#   severity: HIGH
#   recommended_action: "Set deploy.resources.limits.memory and .cpus (or mem_limit and cpus)."
#   input:
#     selector:
#     - type: yaml
package user.compose.resource_limits

import rego.v1

import data.user.compose.lib

limits(svc) := object.get(svc, ["deploy", "resources", "limits"], {})

memory_limited(svc) if limits(svc).memory

memory_limited(svc) if svc.mem_limit

cpu_limited(svc) if limits(svc).cpus

cpu_limited(svc) if svc.cpus

deny contains res if {
	some [name, svc] in lib.services
	not memory_limited(svc)
	res := result.new(sprintf("service %s sets no memory limit", [name]), lib.at(name))
}

deny contains res if {
	some [name, svc] in lib.services
	not cpu_limited(svc)
	res := result.new(sprintf("service %s sets no CPU limit", [name]), lib.at(name))
}
