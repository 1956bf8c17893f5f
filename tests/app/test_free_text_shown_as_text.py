"""HTML and Markdown typed into any free-text field are shown as typed, never interpreted.

Free text reaches the pages from MLflow (run names, tags, descriptions), use-case YAML, sign-offs (meaning,
rationale), alert notes, model-card narratives and user names. Each field of a copied demo gets a payload, each page
that shows the field is rendered with AppTest as a role who sees it, and every Markdown body the page sends is
rendered with a CommonMark parser: the payload must come out as literal text, with no tag, link or heading made
from it. Dataframes, st.text and st.code show text as it is by construction.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from markdown_it import MarkdownIt
from mlflow import MlflowClient
from streamlit.testing.v1 import AppTest

from core.config import Settings
from core.domain.access import Session, User
from core.domain.clock import utc_now
from core.domain.model_card import NARRATIVE_KEYS
from core.services import alerts, auth, model_card, signoff, usecases
from core.services.installation import open_registry, open_store
from tests.app.test_pages import MAIN, TIMEOUT
from tests.conftest import copy_demo

REPO = Path(__file__).resolve().parents[2]
MODEL, VERSION = "sepsis-icu", 2
ATTACKS = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "**bold**", "[link](javascript:alert(1))")
NAME = "<img src=x onerror=alert(1)> **Dr** [x](javascript:alert(1))"  # a full name: one line, at most 100 chars
PASSWORD = "a long enough password"
MARKDOWN = MarkdownIt("commonmark").enable("strikethrough").enable("table")


def payload(field: str) -> str:
    """A payload that names its field, so each field can be found on the page that shows it."""
    return f"# {field}\n" + "\n".join(ATTACKS)


FIELDS = ("model description", "version description", "run name", "run tag", "version tag", "intended use",
          "target population", "use-case title", "outcome", "narrative", "meaning", "rationale", "alert title",
          "alert message", "alert note")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, reviewed_demo: Settings) -> Settings:
    """A copy of the reviewed demo with a payload in every free-text field."""
    settings = copy_demo(reviewed_demo, tmp_path_factory.mktemp("free-text") / "home")
    store, registry = open_store(settings), open_registry(settings)
    admin, lee, patel = (_user(settings, u) for u in ("admin", "lee", "patel"))
    auth.add_user(store, admin, username="mallory", full_name=NAME, role="clinician", password=PASSWORD)
    mallory = _user(settings, "mallory")
    model_card.save_narratives(store, lee, MODEL, VERSION, {NARRATIVE_KEYS[0]: payload("narrative")})
    state = signoff.sign_off_state(store, registry, mallory, MODEL, VERSION)
    signoff.sign(settings, store, registry, mallory, signoff.SignatureRequest(
        MODEL, VERSION, "request_changes", payload("meaning"), payload("rationale"), "mallory", PASSWORD,
        state.evidence.card_sha256, state.evidence.evaluation_id))
    with store.transaction() as cur:
        alert_id = alerts.raise_alert(cur, rule="free-text-test", model=MODEL, version=VERSION, severity="warning",
                                      title=payload("alert title"), message=payload("alert message"))
    assert alert_id is not None
    alerts.acknowledge(store, patel, alert_id, payload("alert note"))
    text = (REPO / "data" / "usecases" / "sepsis-icu-adult.yaml").read_text()
    for key, field in (("title", "use-case title"), ("intended_use", "intended use"),
                       ("target_population", "target population"), ("outcome", "outcome")):
        line = f"{key}: {_yaml(payload(field))}\n"  # a replacement function: re.sub would read its \n as a newline
        text = re.sub(rf"^{key}:( >-\n(  .*\n)+|.*\n)", lambda _, line=line: line, text, flags=re.M)
    imported, _ = usecases.import_use_case(store, admin, text)
    assert (imported.title, imported.intended_use, imported.target_population, imported.outcome) == tuple(
        payload(f) for f in ("use-case title", "intended use", "target population", "outcome"))  # newlines kept
    client = MlflowClient(settings.tracking_uri)
    client.update_registered_model(MODEL, description=payload("model description"))
    client.update_model_version(MODEL, str(VERSION), description=payload("version description"))
    client.set_model_version_tag(MODEL, str(VERSION), "note", payload("version tag"))
    run_id = client.get_model_version(MODEL, str(VERSION)).run_id
    client.set_tag(str(run_id), "mlflow.runName", payload("run name"))
    client.set_tag(str(run_id), "note", payload("run tag"))
    return settings


def _yaml(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _user(settings: Settings, username: str) -> User:
    user = auth.get_user(open_store(settings), username)
    assert user is not None
    return user


@pytest.fixture
def app(hostile: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("MODELBOARD_HOME", str(hostile.home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    st.cache_data.clear()  # read models cached by an earlier test in this process
    return hostile


def page(settings: Settings, username: str, file: str) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    now = utc_now()
    at.session_state["modelboard_session"] = Session(user=_user(settings, username), started_at=now,
                                                     last_active_at=now)
    at.run()
    at.switch_page(f"../pages/{file}").run()
    assert not at.exception, at.exception
    return at


def choose(at: AppTest, label: str, option: object) -> AppTest:
    box = next(b for b in at.selectbox if b.label == label)
    box.select(option).run()
    assert not at.exception, at.exception
    return at


def markdown_bodies(at: AppTest) -> list[str]:
    """Every body the page sends to be read as Markdown (st.markdown, st.write, captions, titles, alerts)."""
    kinds = ("markdown", "caption", "title", "header", "subheader", "info", "warning", "success", "error")
    return [str(element.value) for kind in kinds for element in getattr(at, kind)]


def literal(body: str, text: str) -> bool:
    """Whether `body`, rendered as CommonMark, shows `text` literally."""
    rendered = re.sub(r"\s+", " ", MARKDOWN.render(body))
    return html.escape(re.sub(r"\s+", " ", text), quote=False) in rendered


def shown_fields(at: AppTest) -> set[str]:
    """The fields whose payload the page shows; fails on any payload that would be interpreted."""
    found = set()
    texts = [(field, payload(field)) for field in FIELDS] + [("full name", NAME)]
    for body in markdown_bodies(at):
        unescaped = re.sub(r"\\(.)", r"\1", body)
        for field, text in texts:
            assert text not in body, f"raw {field} sent as Markdown: {body!r}"
            if text in unescaped:
                assert literal(body, text), f"{field} is interpreted: {MARKDOWN.render(body)!r}"
                found.add(field)
        rendered = MARKDOWN.render(body)
        assert not re.search(r"<(script|img)\b|href=\"javascript:", rendered), rendered
    return found


def table_text(at: AppTest) -> str:
    return "\n".join(d.value.to_csv() for d in at.dataframe if isinstance(d.value, pd.DataFrame))


def test_registry_shows_descriptions_run_name_and_tags_as_text(app: Settings) -> None:
    at = choose(page(app, "ng", "registry.py"), "Registered model", MODEL)
    at = choose(at, "Version", VERSION)
    assert shown_fields(at) >= {"model description", "version description"}
    tables = table_text(at)
    for field in ("run name", "run tag", "version tag"):
        assert payload(field).split("\n")[1] in tables, field  # in a dataframe cell, shown as typed


def test_use_case_text_is_shown_as_text(app: Settings) -> None:
    at = choose(page(app, "ng", "use_cases.py"), "Use case", "sepsis-icu-adult")
    assert shown_fields(at) >= {"use-case title", "intended use", "target population", "outcome"}


def test_model_card_shows_narratives_use_case_text_and_signatures_as_text(app: Settings) -> None:
    at = choose(page(app, "ng", "model_card.py"), "Version", VERSION)
    assert shown_fields(at) >= {"narrative", "intended use", "meaning", "full name"}


def test_sign_off_shows_meaning_rationale_and_name_as_text(app: Settings) -> None:
    at = choose(page(app, "ng", "sign_off.py"), "Version", VERSION)
    assert shown_fields(at) >= {"meaning", "rationale", "full name"}


def test_alerts_show_title_message_and_note_as_text(app: Settings) -> None:
    at = page(app, "patel", "alerts.py")
    assert shown_fields(at) >= {"alert title", "alert message", "alert note"}
    home = page(app, "patel", "home.py")
    assert shown_fields(home) >= {"alert title", "alert message", "alert note"}


def test_a_users_own_name_is_shown_as_text(app: Settings) -> None:
    at = page(app, "mallory", "home.py")  # the welcome line and the sidebar
    assert "full name" in shown_fields(at)
    assert sum(literal(b, NAME) for b in markdown_bodies(at)) >= 2


def test_no_page_passes_text_to_streamlit_unescaped_html() -> None:
    """No page or app module lets Streamlit render HTML: user text can never become markup."""
    sources = [p for folder in ("app", "pages") for p in (REPO / folder).glob("*.py")]
    offending = [f"{p.name}:{i}" for p in sources for i, line in enumerate(p.read_text().splitlines(), 1)
                 if re.search(r"unsafe_allow_html\s*=\s*True|st\.html\(|components\.v1|components\.html", line)]
    assert offending == []
