"""mlgate's Airflow operators. Importing this package stays light: heavy libraries load inside ``execute``."""

from mlgate.operators.bandit import CodeStaticGateOperator
from mlgate.operators.base import BaseGateOperator
from mlgate.operators.data import DataExpectationsGateOperator, DataIntegrityGateOperator, DataPiiGateOperator
from mlgate.operators.dynamic import CodeDynamicGateOperator
from mlgate.operators.incident import IncidentRespondOperator
from mlgate.operators.model import ModelArtifactGateOperator
from mlgate.operators.monitor import (
    MonitorConfidenceGateOperator,
    MonitorDriftGateOperator,
    MonitorGateOperator,
    MonitorQueriesGateOperator,
)
from mlgate.operators.privacy import DataPrivacyGateOperator
from mlgate.operators.promote import RegistryPromoteGateOperator
from mlgate.operators.training import ModelTrainingGateOperator
from mlgate.operators.trivy import (
    CodeDependenciesGateOperator,
    DeployConfigGateOperator,
    DeployContainerGateOperator,
)
from mlgate.operators.validation import (
    ModelCertificationGateOperator,
    ModelDosGateOperator,
    ModelExplainabilityGateOperator,
    ModelFairnessGateOperator,
    ModelPoisoningGateOperator,
    ModelPrivacyGateOperator,
    ModelRobustnessGateOperator,
)

__all__ = [
    "BaseGateOperator",
    "CodeDependenciesGateOperator",
    "CodeDynamicGateOperator",
    "CodeStaticGateOperator",
    "DataExpectationsGateOperator",
    "DataIntegrityGateOperator",
    "DataPiiGateOperator",
    "DataPrivacyGateOperator",
    "DeployConfigGateOperator",
    "DeployContainerGateOperator",
    "IncidentRespondOperator",
    "ModelArtifactGateOperator",
    "ModelCertificationGateOperator",
    "ModelDosGateOperator",
    "ModelExplainabilityGateOperator",
    "ModelFairnessGateOperator",
    "ModelPoisoningGateOperator",
    "ModelPrivacyGateOperator",
    "ModelRobustnessGateOperator",
    "ModelTrainingGateOperator",
    "MonitorConfidenceGateOperator",
    "MonitorDriftGateOperator",
    "MonitorGateOperator",
    "MonitorQueriesGateOperator",
    "RegistryPromoteGateOperator",
]
