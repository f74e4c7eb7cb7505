# METADATA
# title: "Model-serving service does not use TLS"
# description: "Without TLS, credentials, inputs and predictions cross the network in clear text."
# scope: package
# custom:
#   id: MLG-COMPOSE-010
#   avd_id: MLG-COMPOSE-010
#   severity: HIGH
#   recommended_action: "Terminate TLS at the service or its proxy and declare it with the label mlgate.tls: \"true\"."
#   input:
#     selector:
#     - type: yaml
package user.compose.serving_tls

import rego.v1

import data.user.compose.lib

deny contains res if {
	some [name, svc] in lib.services
	lib.serving(svc)
	lib.text(object.get(lib.labels(svc), "mlgate.tls", "")) != "true"
	res := result.new(sprintf("model-serving service %s declares no TLS", [name]), lib.at(name))
}
