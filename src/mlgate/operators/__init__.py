"""mlgate's Airflow operators. Importing this package stays light: heavy libraries load inside ``execute``."""

from mlgate.operators.base import BaseGateOperator
from mlgate.operators.data import DataExpectationsGateOperator, DataIntegrityGateOperator
from mlgate.operators.promote import RegistryPromoteGateOperator
from mlgate.operators.training import ModelTrainingGateOperator

__all__ = [
    "BaseGateOperator",
    "DataExpectationsGateOperator",
    "DataIntegrityGateOperator",
    "ModelTrainingGateOperator",
    "RegistryPromoteGateOperator",
]
