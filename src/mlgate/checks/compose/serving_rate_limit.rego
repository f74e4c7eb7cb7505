# METADATA
# title: "Model-serving service has no rate limit"
# description: "Unlimited queries make model extraction, membership inference and denial of service cheap."
# scope: package
# custom:
#   id: MLG-COMPOSE-009
#   avd_id: MLG-COMPOSE-009
#   severity: HIGH
#   recommended_action: "Rate-limit the endpoint and declare it with the label mlgate.rate-limit, e.g. \"60/m\"."
#   input:
#     selector:
#     - type: yaml
package user.compose.serving_rate_limit

import rego.v1

import data.user.compose.lib

deny contains res if {
	some [name, svc] in lib.services
	lib.serving(svc)
	not regex.match(`^[1-9][0-9]*/(s|m|h)$`, lib.text(object.get(lib.labels(svc), "mlgate.rate-limit", "")))
	res := result.new(sprintf("model-serving service %s declares no rate limit", [name]), lib.at(name))
}
