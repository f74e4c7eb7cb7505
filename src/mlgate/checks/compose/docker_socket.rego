# METADATA
# title: "Compose service mounts the Docker socket"
# description: "Access to docker.sock is root on the host: the container can start privileged containers."
# scope: package
# custom:
#   id: MLG-COMPOSE-004
#   avd_id: MLG-COMPOSE-004
#   severity: CRITICAL
#   recommended_action: "Remove the docker.sock volume; use a socket proxy that allows only the API calls needed."
#   input:
#     selector:
#     - type: yaml
package user.compose.docker_socket

import rego.v1

import data.user.compose.lib

source(volume) := split(volume, ":")[0] if is_string(volume)

source(volume) := object.get(volume, "source", "") if is_object(volume)

deny contains res if {
	some [name, svc] in lib.services
	some volume in object.get(svc, "volumes", [])
	endswith(source(volume), "docker.sock")
	res := result.new(sprintf("service %s mounts the Docker socket", [name]), lib.at(name))
}
