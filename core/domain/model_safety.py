"""Which serialized models ModelBoard agrees to load, decided from metadata alone.

MLflow saves scikit-learn models with skops and writes the list of types the
loader must trust into the model's own MLmodel file; MLflow's loader then
trusts whatever that list says. So "skops never runs code from the artifact"
holds only if ModelBoard checks that list against its own allow-list before
anything is loaded (docs/decisions/0002). The check reads the MLmodel YAML,
never the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from core.errors import ValidationError

# Types a fitted scikit-learn model legitimately needs beyond skops' own defaults.
# Each is a data container of scikit-learn or numpy, not something that can call code.
ALLOWED_SKOPS_TYPES: frozenset[str] = frozenset({
    "sklearn.tree._tree.Tree",
    "sklearn._loss.link.Interval",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn._loss._loss.CyHalfMultinomialLoss",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "numpy.dtype",
    # what MLflow's own lightgbm flavour lists for an LGBMClassifier saved with skops
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
    "lightgbm.basic.Booster",
    "collections.OrderedDict",
})


def untrusted_skops_types(flavors: Mapping[str, Any], extra_allowed: Iterable[str] = ()) -> list[str]:
    """The types an MLmodel asks skops to trust that ModelBoard's allow-list does not hold, in any flavour
    saved with skops (scikit-learn's, and lightgbm's, which MLflow also saves that way)."""
    allowed = ALLOWED_SKOPS_TYPES | frozenset(extra_allowed)
    found: set[str] = set()
    for section in flavors.values():
        if not isinstance(section, Mapping) or section.get("serialization_format") != "skops":
            continue
        requested = section.get("skops_trusted_types") or []
        if not isinstance(requested, list):
            found.add(repr(requested))
            continue
        found |= {str(t) for t in requested} - allowed
    return sorted(found)


def check_loadable(flavors: Mapping[str, Any], what: str, extra_allowed: Iterable[str] = ()) -> None:
    """Refuse a model whose skops file would make the loader trust types outside the allow-list."""
    untrusted = untrusted_skops_types(flavors, extra_allowed)
    if untrusted:
        raise ValidationError(
            f"{what} asks the loader to trust types ModelBoard does not allow: {', '.join(untrusted)}. "
            "Save it with only the scikit-learn types it needs in skops_trusted_types, or ask an administrator "
            "to review them and add them to MODELBOARD_SKOPS_TRUSTED_TYPES")
