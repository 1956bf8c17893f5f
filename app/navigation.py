"""The page list: which page each role sees. Core enforces the same rules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.domain.access import Permission, User, can

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"


@dataclass(frozen=True)
class PageSpec:
    file: str
    title: str
    icon: str
    needs: Permission | None = None


PAGES: tuple[PageSpec, ...] = (
    PageSpec("home.py", "Home", ":material/home:"),
    PageSpec("registry.py", "Model registry", ":material/inventory_2:", Permission.VIEW_REGISTRY),
    PageSpec("model_card.py", "Model card", ":material/description:", Permission.VIEW_REGISTRY),
    PageSpec("submit.py", "Submit", ":material/upload:", Permission.SUBMIT_MODELS),
    PageSpec("use_cases.py", "Use cases", ":material/assignment:", Permission.VIEW_REGISTRY),
    PageSpec("performance.py", "Performance", ":material/monitoring:", Permission.VIEW_REGISTRY),
    PageSpec("fairness.py", "Fairness", ":material/balance:", Permission.VIEW_REGISTRY),
    PageSpec("explanations.py", "Explanations", ":material/insights:", Permission.VIEW_REGISTRY),
    PageSpec("compare.py", "Compare", ":material/compare_arrows:", Permission.VIEW_REGISTRY),
    PageSpec("sign_off.py", "Sign-off", ":material/approval:", Permission.VIEW_REGISTRY),
    PageSpec("production.py", "Production log", ":material/monitor_heart:", Permission.VIEW_PRODUCTION_LOG),
    PageSpec("monitoring.py", "Monitoring", ":material/query_stats:", Permission.VIEW_PRODUCTION_LOG),
    PageSpec("alerts.py", "Alerts", ":material/notifications:", Permission.VIEW_PRODUCTION_LOG),
    PageSpec("access_log.py", "Audit log", ":material/policy:", Permission.VIEW_AUDIT_LOG),
    PageSpec("version_history.py", "Version history", ":material/history:", Permission.VIEW_AUDIT_LOG),
    PageSpec("users.py", "Users", ":material/group:", Permission.MANAGE_USERS),
)
LOGIN = PageSpec("login.py", "Log in", ":material/login:")


def pages_for(user: User) -> list[PageSpec]:
    return [p for p in PAGES if p.needs is None or can(user, p.needs)]


def page_path(spec: PageSpec) -> str:
    return str(PAGES_DIR / spec.file)


def page_file(file: str) -> str:
    """Absolute path of a page module, for st.page_link and st.switch_page."""
    return str(PAGES_DIR / file)
