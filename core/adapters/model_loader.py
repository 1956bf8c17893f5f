"""Loading a registered model: the only module that unpickles, and it runs only in the worker process.

MLflow's own loaders do the loading (pyfunc, and the flavour's native loader
where one exists, for `predict_proba` and SHAP), only for versions the registry
holds, after `core.domain.model_safety.check_loadable` approved the MLmodel
file. The Streamlit server runs with MLflow's deserialization switched off, so
calling this there fails inside MLflow (docs/decisions/0002, 0005).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from core.errors import ModelBoardError

# Flavours whose native loader returns an estimator with predict_proba (scikit-learn's API).
NATIVE_FLAVORS = ("sklearn", "xgboost", "lightgbm")


@dataclass(frozen=True)
class LoadedModel:
    """MLflow's pyfunc model, and the flavour's own object where MLflow can load one."""

    uri: str
    pyfunc: Any
    native: Any
    flavor: str  # the native flavour, or "python_function"

    @property
    def flavors(self) -> dict[str, Any]:
        return dict(self.pyfunc.metadata.flavors)


def load_registered(name: str, version: int) -> LoadedModel:
    """Load version `version` of `name` through MLflow (pyfunc, then the native flavour if there is one)."""
    import mlflow.pyfunc

    uri = f"models:/{name}/{version}"
    try:
        pyfunc = mlflow.pyfunc.load_model(uri)
        flavors = pyfunc.metadata.flavors
        for flavor in NATIVE_FLAVORS:
            if flavor in flavors:
                module = importlib.import_module(f"mlflow.{flavor}")
                return LoadedModel(uri, pyfunc, module.load_model(uri), flavor)
    except ModuleNotFoundError as exc:
        raise ModelBoardError(f"{name} v{version} needs the Python package '{exc.name}', which is not installed "
                              "where ModelBoard evaluates models: install the version listed in the model's "
                              "requirements.txt into ModelBoard's environment") from exc
    return LoadedModel(uri, pyfunc, None, "python_function")
