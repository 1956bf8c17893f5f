"""The Audit log and Version history pages: the chain check and the as-of answer for an auditor, and
nothing for a clinician."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
from streamlit.testing.v1 import AppTest

from app.wording import plain
from core.config import Settings
from core.services.audit import verify_chain
from core.services.auth import get_user
from core.services.history import production_as_of
from core.services.installation import open_store
from tests.app.test_pages import REPO, TIMEOUT, full_error_details, logged_in, page_texts

AUDIT_PAGES = ("access_log.py", "version_history.py")


def texts(at: AppTest) -> str:
    return page_texts(at) + "\n" + "\n".join(str(e.value) for e in at.success)


def test_audit_log_shows_the_chain_check_and_filters_by_model_and_version(demo_env: Settings) -> None:
    at = logged_in(demo_env, "auditor")
    at.switch_page("../pages/access_log.py").run()
    assert not at.exception, at.exception
    chain = verify_chain(open_store(demo_env))
    assert chain.ok
    assert "The audit trail is intact" in texts(at)
    model = next(s for s in at.selectbox if s.label == "Model")
    model.select("sepsis-icu").run()
    version = next(s for s in at.selectbox if s.label == "Version")
    version.select(1).run()
    assert not at.exception, at.exception
    shown = at.dataframe[0].value
    assert len(shown) > 0
    assert set(shown["Model"]) == {"sepsis-icu v1"}


def test_version_history_answers_which_version_held_production(demo_env: Settings) -> None:
    at = logged_in(demo_env, "auditor")
    at.switch_page("../pages/version_history.py").run()
    assert not at.exception, at.exception
    assert "Version history" in [t.value for t in at.title]
    asked_date, asked_time = date(2026, 8, 1), time(8, 0)
    at.date_input(key="asof_date").set_value(asked_date)
    at.time_input(key="asof_time").set_value(asked_time).run()
    assert not at.exception, at.exception
    kim = get_user(open_store(demo_env), "kim")
    assert kim is not None
    expected = production_as_of(open_store(demo_env), kim, "sepsis-icu", datetime.combine(asked_date, asked_time))
    assert plain(expected.sentence) in texts(at)  # shown escaped: the sentence names the model


def test_version_history_shows_a_version_timeline_and_the_evidence_download(demo_env: Settings,
                                                                            evaluated_v2: object) -> None:
    at = logged_in(demo_env, "admin")
    at.switch_page("../pages/version_history.py").run()
    versions = at.selectbox(key="timeline_version")
    versions.select(2).run()
    assert not at.exception, at.exception
    milestones = list(at.dataframe[0].value["Milestone"])
    assert "evaluated" in " ".join(milestones) and any(m.startswith("submitted by") for m in milestones)
    assert "Download evidence package of sepsis-icu v2" in [b.label for b in at.get("download_button")]


@pytest.mark.parametrize("page", AUDIT_PAGES)
def test_a_clinician_reaches_neither_page(demo_env: Settings, page: str) -> None:
    at = logged_in(demo_env, "clinician")
    at.run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(f"../pages/{page}")
    direct = AppTest.from_file(str(REPO / "pages" / page), default_timeout=TIMEOUT)
    direct.session_state["modelboard_session"] = at.session_state["modelboard_session"]
    with full_error_details():
        direct.run()
    assert direct.exception and "may not view the audit log" in direct.exception[0].message
    assert not direct.dataframe
