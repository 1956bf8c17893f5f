"""Numbered schema migrations of the governance store.

Append only: a released migration is never edited, a change is a new number.
`schema_version` records which ones ran, so a store written by a newer
ModelBoard is recognised and refused instead of being misread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.domain.audit_chain import GENESIS, row_hash


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]
    then: Callable[[Any], None] | None = None  # runs after the statements, in the same transaction


SCHEMA_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    description VARCHAR NOT NULL,
    applied_at  TIMESTAMP NOT NULL
)
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "users, audit events, installation facts",
        (
            """
            CREATE TABLE users (
                username        VARCHAR PRIMARY KEY,
                full_name       VARCHAR NOT NULL,
                role            VARCHAR NOT NULL,
                password_hash   VARCHAR NOT NULL,
                active          BOOLEAN NOT NULL DEFAULT TRUE,
                failed_attempts INTEGER NOT NULL DEFAULT 0,
                locked_until    TIMESTAMP,
                created_at      TIMESTAMP NOT NULL,
                last_login_at   TIMESTAMP
            )
            """,
            "CREATE SEQUENCE audit_event_seq START 1",
            """
            CREATE TABLE audit_events (
                id      BIGINT PRIMARY KEY DEFAULT nextval('audit_event_seq'),
                occurred_at TIMESTAMP NOT NULL,
                actor   VARCHAR NOT NULL,
                action  VARCHAR NOT NULL,
                target  VARCHAR,
                detail  JSON
            )
            """,
            """
            CREATE TABLE installation (
                key   VARCHAR PRIMARY KEY,
                value VARCHAR NOT NULL
            )
            """,
        ),
    ),
    Migration(
        2,
        "production prediction log and delayed outcome labels",
        (
            """
            CREATE TABLE prediction_log (
                model_name    VARCHAR NOT NULL,
                model_version INTEGER NOT NULL,
                encounter_id  VARCHAR NOT NULL,
                predicted_at  TIMESTAMP NOT NULL,
                score         DOUBLE NOT NULL,
                decision      BOOLEAN NOT NULL,
                features      JSON NOT NULL,
                attributes    JSON,
                ingested_at   TIMESTAMP NOT NULL,
                PRIMARY KEY (model_name, encounter_id)
            )
            """,
            """
            CREATE TABLE outcome_labels (
                model_name   VARCHAR NOT NULL,
                encounter_id VARCHAR NOT NULL,
                outcome      INTEGER NOT NULL,
                labelled_at  TIMESTAMP NOT NULL,
                PRIMARY KEY (model_name, encounter_id)
            )
            """,
        ),
    ),
)

MIGRATIONS += (
    Migration(
        3,
        "versioned use cases",
        (
            """
            CREATE TABLE use_cases (
                name        VARCHAR NOT NULL,
                version     INTEGER NOT NULL,
                definition  JSON NOT NULL,
                imported_by VARCHAR NOT NULL,
                imported_at TIMESTAMP NOT NULL,
                PRIMARY KEY (name, version)
            )
            """,
        ),
    ),
)

MIGRATIONS += (
    Migration(
        4,
        "evaluations computed by ModelBoard's worker, and their per-patient scores",
        (
            """
            CREATE TABLE evaluations (
                id               VARCHAR PRIMARY KEY,
                model_name       VARCHAR NOT NULL,
                model_version    INTEGER NOT NULL,
                use_case         VARCHAR NOT NULL,
                use_case_version INTEGER NOT NULL,
                status           VARCHAR NOT NULL,
                request          JSON NOT NULL,
                data_digest      VARCHAR NOT NULL,
                submitted_by     VARCHAR NOT NULL,
                submitted_at     TIMESTAMP NOT NULL,
                finished_at      TIMESTAMP,
                result           JSON,
                result_sha256    VARCHAR,
                error            VARCHAR
            )
            """,
            """
            CREATE TABLE evaluation_rows (
                evaluation_id VARCHAR NOT NULL,
                row_index     INTEGER NOT NULL,
                encounter_id  VARCHAR,
                label         INTEGER NOT NULL,
                score         DOUBLE NOT NULL,
                attributes    JSON NOT NULL,
                PRIMARY KEY (evaluation_id, row_index)
            )
            """,
        ),
    ),
)

MIGRATIONS += (
    Migration(
        5,
        "model card narratives and every rendered card with its SHA-256",
        (
            """
            CREATE TABLE model_card_narratives (
                model_name    VARCHAR NOT NULL,
                model_version INTEGER NOT NULL,
                field         VARCHAR NOT NULL,
                value         VARCHAR NOT NULL,
                updated_by    VARCHAR NOT NULL,
                updated_at    TIMESTAMP NOT NULL,
                PRIMARY KEY (model_name, model_version, field)
            )
            """,
            """
            CREATE TABLE model_cards (
                model_name    VARCHAR NOT NULL,
                model_version INTEGER NOT NULL,
                sha256        VARCHAR NOT NULL,
                markdown      VARCHAR NOT NULL,
                evaluation_id VARCHAR,
                rendered_at   TIMESTAMP NOT NULL,
                PRIMARY KEY (model_name, model_version, sha256)
            )
            """,
        ),
    ),
)



def _seal_existing_audit_rows(cur: Any) -> None:
    """Chain the audit rows written before the chain existed, once, in id order. This is the only
    statement that ever writes to an existing audit row, and it only fills the two new, empty columns."""
    previous = GENESIS
    rows = cur.execute("SELECT id, occurred_at, actor, action, target, model_name, model_version, "
                       "CAST(detail AS VARCHAR) FROM audit_events ORDER BY id").fetchall()
    for row in rows:
        digest = row_hash(*row, prev_hash=previous)
        cur.execute("UPDATE audit_events SET prev_hash = ?, row_hash = ? WHERE id = ?", [previous, digest, row[0]])
        previous = digest


MIGRATIONS += (
    Migration(
        6,
        "hash-chained audit events, with the model and version they concern",
        (
            "ALTER TABLE audit_events ADD COLUMN model_name VARCHAR",
            "ALTER TABLE audit_events ADD COLUMN model_version INTEGER",
            "ALTER TABLE audit_events ADD COLUMN prev_hash VARCHAR",
            "ALTER TABLE audit_events ADD COLUMN row_hash VARCHAR",
        ),
        then=_seal_existing_audit_rows,
    ),
)

MIGRATIONS += (
    Migration(
        7,
        "electronic signatures, promotions, alias history and alerts",
        (
            """
            CREATE TABLE signatures (
                id                VARCHAR PRIMARY KEY,
                model_name        VARCHAR NOT NULL,
                model_version     INTEGER NOT NULL,
                kind              VARCHAR NOT NULL,
                decision          VARCHAR NOT NULL,
                signer            VARCHAR NOT NULL,
                full_name         VARCHAR NOT NULL,
                role              VARCHAR NOT NULL,
                meaning           VARCHAR NOT NULL,
                rationale         VARCHAR NOT NULL,
                signed_at         TIMESTAMP NOT NULL,
                evaluation_id     VARCHAR,
                evaluation_sha256 VARCHAR,
                card_sha256       VARCHAR,
                artifact_sha256   VARCHAR NOT NULL,
                policy            VARCHAR NOT NULL,
                criteria          JSON,
                UNIQUE (model_name, model_version, signer, kind, evaluation_sha256, card_sha256)
            )
            """,
            """
            CREATE TABLE promotions (
                id              VARCHAR PRIMARY KEY,
                model_name      VARCHAR NOT NULL,
                kind            VARCHAR NOT NULL,
                from_version    INTEGER,
                to_version      INTEGER NOT NULL,
                state           VARCHAR NOT NULL,
                policy          VARCHAR,
                signature_ids   JSON NOT NULL,
                artifact_sha256 VARCHAR NOT NULL,
                requested_by    VARCHAR NOT NULL,
                started_at      TIMESTAMP NOT NULL,
                finished_at     TIMESTAMP,
                note            VARCHAR
            )
            """,
            "CREATE SEQUENCE alias_history_seq START 1",
            """
            CREATE TABLE alias_history (
                id              BIGINT PRIMARY KEY DEFAULT nextval('alias_history_seq'),
                model_name      VARCHAR NOT NULL,
                alias           VARCHAR NOT NULL,
                version         INTEGER,
                changed_at      TIMESTAMP NOT NULL,
                kind            VARCHAR NOT NULL,
                promotion_id    VARCHAR,
                actor           VARCHAR NOT NULL,
                artifact_sha256 VARCHAR
            )
            """,
            """
            CREATE TABLE alerts (
                id              VARCHAR PRIMARY KEY,
                rule            VARCHAR NOT NULL,
                model_name      VARCHAR NOT NULL,
                model_version   INTEGER,
                severity        VARCHAR NOT NULL,
                status          VARCHAR NOT NULL,
                title           VARCHAR NOT NULL,
                message         VARCHAR NOT NULL,
                evidence        JSON,
                raised_at       TIMESTAMP NOT NULL,
                window_start    TIMESTAMP,
                acknowledged_by VARCHAR,
                acknowledged_at TIMESTAMP,
                acknowledgement VARCHAR,
                resolved_by     VARCHAR,
                resolved_at     TIMESTAMP,
                resolution      VARCHAR
            )
            """,
        ),
    ),
)

MIGRATIONS += (
    Migration(
        8,
        "ingested production files and the rows they quarantined",
        (
            """
            CREATE TABLE ingested_files (
                sha256        VARCHAR NOT NULL,
                kind          VARCHAR NOT NULL,
                source        VARCHAR NOT NULL,
                model_name    VARCHAR,
                model_version INTEGER,
                rows          INTEGER NOT NULL,
                added         INTEGER NOT NULL,
                already       INTEGER NOT NULL,
                quarantined   INTEGER NOT NULL,
                ingested_by   VARCHAR NOT NULL,
                ingested_at   TIMESTAMP NOT NULL
            )
            """,
            """
            CREATE TABLE quarantine (
                file_sha256   VARCHAR NOT NULL,
                kind          VARCHAR NOT NULL,
                row_number    INTEGER NOT NULL,
                model_name    VARCHAR,
                reason        VARCHAR NOT NULL,
                raw           JSON NOT NULL,
                quarantined_at TIMESTAMP NOT NULL,
                PRIMARY KEY (file_sha256, kind, row_number)
            )
            """,
        ),
    ),
)

MIGRATIONS += (
    Migration(
        9,
        "monitoring: reference data per version, computed windows, per-feature drift, subgroups, runs",
        (
            """
            CREATE TABLE monitoring_references (
                model_name    VARCHAR NOT NULL,
                model_version INTEGER NOT NULL,
                source        VARCHAR NOT NULL,
                evaluation_id VARCHAR,
                rows          INTEGER NOT NULL,
                threshold     DOUBLE NOT NULL,
                auroc         DOUBLE,
                sensitivity   DOUBLE,
                ppv           DOUBLE,
                path          VARCHAR NOT NULL,
                sha256        VARCHAR NOT NULL,
                created_at    TIMESTAMP NOT NULL,
                PRIMARY KEY (model_name, model_version)
            )
            """,
            """
            CREATE TABLE monitoring_windows (
                model_name      VARCHAR NOT NULL,
                model_version   INTEGER NOT NULL,
                granularity     VARCHAR NOT NULL,
                window_start    TIMESTAMP NOT NULL,
                window_end      TIMESTAMP NOT NULL,
                predictions     INTEGER NOT NULL,
                labelled        INTEGER NOT NULL,
                fingerprint     VARCHAR NOT NULL,
                run_id          VARCHAR NOT NULL,
                computed_at     TIMESTAMP NOT NULL,
                judged          BOOLEAN NOT NULL,
                n_features      INTEGER,
                n_drifted       INTEGER,
                drifted_share   DOUBLE,
                score_psi       DOUBLE,
                mean_score      DOUBLE,
                flagged_share   DOUBLE,
                est_auroc       DOUBLE,
                est_sensitivity DOUBLE,
                est_ppv         DOUBLE,
                auroc           DOUBLE, auroc_lo DOUBLE, auroc_hi DOUBLE,
                sensitivity     DOUBLE, sensitivity_lo DOUBLE, sensitivity_hi DOUBLE,
                ppv             DOUBLE, ppv_lo DOUBLE, ppv_hi DOUBLE,
                observed_rate   DOUBLE,
                oe_ratio        DOUBLE, oe_lo DOUBLE, oe_hi DOUBLE,
                breaches        JSON NOT NULL,
                PRIMARY KEY (model_name, model_version, granularity, window_start)
            )
            """,
            """
            CREATE TABLE monitoring_feature_drift (
                model_name    VARCHAR NOT NULL,
                model_version INTEGER NOT NULL,
                granularity   VARCHAR NOT NULL,
                window_start  TIMESTAMP NOT NULL,
                column_name   VARCHAR NOT NULL,
                role          VARCHAR NOT NULL,
                kind          VARCHAR NOT NULL,
                stattest      VARCHAR NOT NULL,
                score         DOUBLE,
                threshold     DOUBLE NOT NULL,
                drifted       BOOLEAN NOT NULL,
                reference_mean DOUBLE,
                current_mean  DOUBLE,
                PRIMARY KEY (model_name, model_version, granularity, window_start, column_name)
            )
            """,
            """
            CREATE TABLE monitoring_subgroups (
                model_name      VARCHAR NOT NULL,
                model_version   INTEGER NOT NULL,
                granularity     VARCHAR NOT NULL,
                window_start    TIMESTAMP NOT NULL,
                attribute       VARCHAR NOT NULL,
                subgroup        VARCHAR NOT NULL,
                n               INTEGER NOT NULL,
                positives       INTEGER NOT NULL,
                sensitivity     DOUBLE, sensitivity_lo DOUBLE, sensitivity_hi DOUBLE,
                est_sensitivity DOUBLE,
                reference_sensitivity DOUBLE,
                PRIMARY KEY (model_name, model_version, granularity, window_start, attribute, subgroup)
            )
            """,
            """
            CREATE TABLE monitoring_runs (
                id          VARCHAR PRIMARY KEY,
                actor       VARCHAR NOT NULL,
                started_at  TIMESTAMP NOT NULL,
                finished_at TIMESTAMP,
                windows     INTEGER NOT NULL DEFAULT 0,
                alerts      INTEGER NOT NULL DEFAULT 0,
                summary     JSON
            )
            """,
        ),
    ),
)

MIGRATIONS += (
    Migration(
        10,
        "monitoring: each input's missing share per window, beside its share in the reference data; an input "
        "missing on one side has no drift test, so no threshold",
        (
            "ALTER TABLE monitoring_feature_drift ADD COLUMN reference_missing_share DOUBLE",
            "ALTER TABLE monitoring_feature_drift ADD COLUMN missing_share DOUBLE",
            "ALTER TABLE monitoring_feature_drift ALTER COLUMN threshold DROP NOT NULL",
        ),
    ),
)

MIGRATIONS += (
    Migration(
        11,
        "production predictions keyed by model, version and encounter: the same encounter scored by two "
        "versions is two rows, not one row and a silent drop",
        (
            """
            CREATE TABLE prediction_log_by_version (
                model_name    VARCHAR NOT NULL,
                model_version INTEGER NOT NULL,
                encounter_id  VARCHAR NOT NULL,
                predicted_at  TIMESTAMP NOT NULL,
                score         DOUBLE NOT NULL,
                decision      BOOLEAN NOT NULL,
                features      JSON NOT NULL,
                attributes    JSON,
                ingested_at   TIMESTAMP NOT NULL,
                PRIMARY KEY (model_name, model_version, encounter_id)
            )
            """,
            "INSERT INTO prediction_log_by_version SELECT * FROM prediction_log",
            "DROP TABLE prediction_log",
            "ALTER TABLE prediction_log_by_version RENAME TO prediction_log",
        ),
    ),
)

MIGRATIONS += (
    Migration(
        12,
        "signatures: the gates that failed when an approval was given, which its signer acknowledged (a JSON list "
        "of gate names; NULL for signatures given before this column and for those given while every gate passed)",
        ("ALTER TABLE signatures ADD COLUMN acknowledged_gates JSON",),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version
