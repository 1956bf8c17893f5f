"""House rules that code review would otherwise have to catch by eye."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def python_files(folder: str) -> list[Path]:
    files = sorted((REPO / folder).rglob("*.py"))
    assert files, f"no Python files under {folder}/"
    return files


@pytest.mark.parametrize("path", python_files("core"), ids=lambda p: str(p.relative_to(REPO)))
def test_core_never_imports_streamlit(path: Path) -> None:
    assert not any(m == "streamlit" or m.startswith("streamlit.") for m in imported_modules(path))


@pytest.mark.parametrize("path", python_files("core/domain"), ids=lambda p: str(p.relative_to(REPO)))
def test_domain_imports_no_storage_library(path: Path) -> None:
    storage = {"duckdb", "mlflow", "sqlite3"}
    assert not {m.split(".")[0] for m in imported_modules(path)} & storage


@pytest.mark.parametrize("path", [p for p in python_files("core") if "adapters" not in p.parts],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_only_adapters_know_the_store_engines_and_mlflow(path: Path) -> None:
    """Services ask the store and the registry for what they mean; which database holds the store (DuckDB or
    PostgreSQL) and how MLflow is called is known in core/adapters/ only (issue 15), imports inside functions
    included. `data/` plays an outside data scientist using the plain MLflow API and is exempt."""
    drivers = {"duckdb", "psycopg", "psycopg_pool", "mlflow", "sqlite3"}
    assert not {m.split(".")[0] for m in imported_modules(path)} & drivers


@pytest.mark.parametrize("path", python_files("pages") + python_files("app"), ids=lambda p: str(p.relative_to(REPO)))
def test_pages_use_no_unsafe_html_sql_or_storage(path: Path) -> None:
    text = path.read_text()
    assert "unsafe_allow_html" not in text
    modules = {m.split(".")[0] for m in imported_modules(path)}
    assert not modules & {"duckdb", "psycopg", "psycopg_pool", "mlflow", "sqlite3"}
    if path.parent.name == "pages":
        assert "SELECT " not in text.upper().replace("SELECTBOX", "")


@pytest.mark.parametrize("path", python_files("pages"), ids=lambda p: p.name)
def test_pages_stay_thin(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 150


def test_only_app_cache_uses_streamlit_caching() -> None:
    users = [p for p in python_files("app") + python_files("pages") if "st.cache_" in p.read_text()]
    assert [p.name for p in users] == ["cache.py"]


AUDIT_REWRITE = re.compile(r"(UPDATE\s+audit_events|DELETE\s+FROM\s+audit_events|TRUNCATE\s+audit_events|"
                           r"DROP\s+TABLE\s+audit_events|INSERT\s+OR\s+REPLACE\s+INTO\s+audit_events)", re.IGNORECASE)


def test_no_code_path_rewrites_audit_rows() -> None:
    """The audit trail is append-only in code, not only by convention. The one exception is migration 6, which
    filled the hash columns of rows written before the chain existed (tests/core/test_audit_chain.py checks it)."""
    found = {str(p.relative_to(REPO)): AUDIT_REWRITE.findall(p.read_text())
             for p in python_files("core") + python_files("app") + python_files("pages") + python_files("data")}
    assert {p: hits for p, hits in found.items() if hits} == {"core/adapters/migrations.py": ["UPDATE audit_events"]}


def test_only_the_model_loader_loads_models() -> None:
    """Unpickling happens in one module, which only the worker process runs (docs/decisions/0002, 0005)."""
    loading = {str(p.relative_to(REPO)) for p in python_files("core") + python_files("app") + python_files("pages")
               if re.search(r"\bload_model\(", p.read_text())}
    assert loading == {"core/adapters/model_loader.py"}
