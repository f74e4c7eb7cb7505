# METADATA
# title: "Model-serving service requires no authentication"
# description: "A service labelled mlgate.serving without an mlgate.auth label answers anyone: extraction and abuse."
# scope: package
# custom:
#   id: MLG-COMPOSE-008
#   avd_id: MLG-COMPOSE-008
#   severity: HIGH
#   recommended_action: "Put the endpoint behind authentication and declare it with the label mlgate.auth (oidc, token, mtls, basic, apikey)."
#   input:
#     selector:
#     - type: yaml
package user.compose.serving_auth

import rego.v1

import data.user.compose.lib

deny contains res if {
	some [name, svc] in lib.services
	lib.serving(svc)
	not lib.text(object.get(lib.labels(svc), "mlgate.auth", "")) in lib.auth_methods
	res := result.new(sprintf("model-serving service %s declares no authentication", [name]), lib.at(name))
}
