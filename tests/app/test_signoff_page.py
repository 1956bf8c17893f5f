"""Sensible defaults and signing with eyes open, on the pages: Sign-off opens on the version awaiting the reader's
review, links from Home carry the version, the Sign form says what an approval will do and stores the
acknowledgement of failing gates; nothing raw on Home, Sign-off, Model card or Version history."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app.navigation import pages_for
from core.config import Settings
from core.services import signoff, worklist
from core.services.demo import DEMO_USERS
from core.services.installation import open_registry, open_store
from tests.app.screen import raw_identifiers
from tests.app.test_pages import logged_in, page_texts
from tests.conftest import copy_demo

MODEL = "sepsis-icu"
PASSWORDS = {username: password for username, _name, _role, password in DEMO_USERS}
MINE = ("home.py", "sign_off.py", "model_card.py", "version_history.py")


def version_box(at: AppTest, label: str = "Version") -> object:
    return next(b for b in at.selectbox if b.label == label)


def opened(settings: Settings, role: str, page: str) -> AppTest:
    at = logged_in(settings, role)
    at.switch_page(f"../pages/{page}").run()
    assert not at.exception, at.exception
    return at


def test_sign_off_opens_on_v2_for_a_clinician_and_says_what_an_approval_will_do(demo_env: Settings,
                                                                                evaluated_v2: object) -> None:
    at = opened(demo_env, "clinician", "sign_off.py")
    box = version_box(at)
    assert box.value == 2 and "v2 — awaits your review" in box.options  # type: ignore[attr-defined]
    user = at.session_state["modelboard_session"].user
    state = signoff.sign_off_state(open_store(demo_env), open_registry(demo_env), user, MODEL, 2)
    outlook = state.outlook(user)
    assert outlook.failing == state.failing_gates and len(outlook.failing) == 2
    text = page_texts(at)
    assert "**Gates failing:** " + ", ".join(outlook.failing) + "." in text
    assert "production will not change until the 2 failing gates are resolved" in text
    assert [c.label for c in at.checkbox] == [outlook.acknowledgement_label]


@pytest.mark.parametrize(("role", "page", "box"), [("auditor", "model_card.py", "Version"),
                                                   ("admin", "version_history.py", "Version"),
                                                   ("data_scientist", "sign_off.py", "Version")])
def test_people_with_nothing_to_sign_open_on_the_version_in_production(demo_env: Settings, evaluated_v2: object,
                                                                      role: str, page: str, box: str) -> None:
    at = opened(demo_env, role, page)
    production = open_registry(demo_env).version_for_alias(MODEL, "production")
    assert version_box(at, box).value == production  # type: ignore[attr-defined]


def test_home_links_to_sign_off_on_the_version_that_waits(demo_env: Settings, evaluated_v2: object) -> None:
    at = opened(demo_env, "clinician", "home.py")
    links = {link.proto.label: (link.proto.page, link.proto.query_string) for link in at.get("page_link")}
    assert links[f"{MODEL} v2 waits for your review"] == ("sign_off", f"model={MODEL}&version=2")
    text = page_texts(at)
    assert "is in clinical use but never reviewed in ModelBoard: no one has signed it." in text
    assert "Nothing waits for your review" not in text


def test_a_link_asking_for_a_version_wins_over_the_default(demo_env: Settings, evaluated_v2: object) -> None:
    at = logged_in(demo_env, "clinician")
    at.query_params["model"] = MODEL
    at.query_params["version"] = "1"
    at.switch_page("../pages/sign_off.py").run()
    assert not at.exception, at.exception
    assert version_box(at).value == 1  # type: ignore[attr-defined]


def _roles_and_pages() -> Iterator[tuple[str, str]]:
    from core.domain.access import ROLES, User

    for role in ROLES:
        allowed = {spec.file for spec in pages_for(User(username="x", full_name="X", role=role))}
        yield from ((role, page) for page in MINE if page in allowed)


@pytest.mark.parametrize(("role", "page"), list(_roles_and_pages()))
def test_nothing_raw_on_screen(demo_env: Settings, evaluated_v2: object, role: str, page: str) -> None:
    at = opened(demo_env, role, page)
    assert raw_identifiers(at) == []


# -- signing through the page (on a copy of the reviewed demo) -----------------------------------------------------
@pytest.fixture(scope="module")
def signing_demo(tmp_path_factory: pytest.TempPathFactory, reviewed_demo: Settings) -> Settings:
    return copy_demo(reviewed_demo, tmp_path_factory.mktemp("signoff-page") / "home")


def test_approving_through_the_page_needs_the_acknowledgement_and_stores_it(
        signing_demo: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELBOARD_HOME", str(signing_demo.home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    st.cache_data.clear()
    at = opened(signing_demo, "clinician", "sign_off.py")
    assert version_box(at).value == 2  # type: ignore[attr-defined]
    next(t for t in at.text_area if t.label == "Rationale").input("Reviewed the fairness gap and the card.")
    next(t for t in at.text_input if t.label == "Username (signature)").input("ng")
    next(t for t in at.text_input if t.label == "Password (signature)").input(PASSWORDS["ng"])
    next(b for b in at.button if b.label == "Sign").click().run()
    assert "approving anyway needs your acknowledgement" in " ".join(str(e.value) for e in at.error)
    store = open_store(signing_demo)
    assert store.query("SELECT 1 FROM signatures WHERE signer = 'ng'") == []

    shown = [c.label for c in at.checkbox]
    at.checkbox(key="acknowledge-failing-gates").check()
    next(t for t in at.text_input if t.label == "Password (signature)").input(PASSWORDS["ng"])
    next(b for b in at.button if b.label == "Sign").click().run()
    assert not at.exception and not at.error, [str(e.value) for e in at.error]
    (row,) = store.query("SELECT acknowledged_gates FROM signatures WHERE signer = 'ng' AND model_version = 2")
    stored = json.loads(row["acknowledged_gates"])
    assert shown == [f"I have read that 2 gates fail: {'; '.join(stored)}. My approval is recorded but does not "
                     "move production while they fail."]
    assert "approved knowing that 2 gates failed" in " ".join(str(s.value) for s in at.success)
    user = at.session_state["modelboard_session"].user
    after = worklist.version_menu(store, open_registry(signing_demo), user, MODEL)
    assert after.option(2).signed_by_you and version_box(at).value == 2  # type: ignore[attr-defined]
    assert raw_identifiers(at) == []
