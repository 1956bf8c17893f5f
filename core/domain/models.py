"""What ModelBoard knows about registered models, as read from MLflow.

These are read models: MLflow stays the source of truth, and nothing here is
stored by ModelBoard except as a cache it can rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

STATUS_TAG = "modelboard.status"

# Plain words for the review status a version carries in its MLflow tags.
STATUS_LABELS: dict[str, str] = {
    "registered": "Registered, not yet submitted for review",
    "in_review": "In clinical review",
    "approved": "Approved for clinical use",
    "rejected": "Rejected",
    "changes_requested": "Changes requested",
    "retired": "Retired (replaced in production; kept as alias 'previous')",
    "rolled_back": "Withdrawn from clinical use (rolled back)",
    "review_required": "In clinical use, review required (a critical monitoring alert is open)",
}

# Run metrics shown in version tables, in the order clinicians read them.
KEY_METRICS: tuple[str, ...] = ("val_auroc", "val_sensitivity", "val_specificity", "val_ppv", "val_brier")


@dataclass(frozen=True)
class DatasetRef:
    """A dataset logged with the version's run (mlflow.log_input)."""

    name: str
    digest: str
    context: str
    source_type: str
    rows: int | None = None


@dataclass(frozen=True)
class RegisteredModelSummary:
    name: str
    description: str
    aliases: dict[str, int]
    version_count: int
    latest_version: int | None
    last_updated: datetime | None


@dataclass(frozen=True)
class ModelVersionSummary:
    name: str
    version: int
    aliases: tuple[str, ...]
    status: str
    created_at: datetime
    logged_by: str
    run_id: str | None
    description: str
    key_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


@dataclass(frozen=True)
class ModelVersionDetail:
    summary: ModelVersionSummary
    source: str
    run_name: str | None
    experiment_id: str | None
    params: dict[str, str]
    metrics: dict[str, float]
    version_tags: dict[str, str]
    run_tags: dict[str, str]
    datasets: tuple[DatasetRef, ...]
    git_commit: str | None
    model_id: str | None
