"""Every page renders for every role that may see it, and no role reaches another's page.

streamlit.testing.v1.AppTest runs the real entry point against the session's demo
(a real DuckDB file and MLflow sqlite store built by the demo builder).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from app.navigation import PAGES, pages_for
from core.config import Settings
from core.domain.access import ROLES, Session, User
from core.domain.clock import utc_now
from core.errors import AuthenticationFailed
from core.services import model_card
from core.services.auth import LoginPolicy, authenticate, get_user
from core.services.installation import open_registry, open_store
from tests.app.screen import raw_identifiers, screen_texts

REPO = Path(__file__).resolve().parents[2]
MAIN = str(REPO / "app" / "main.py")
TIMEOUT = 60
USERNAMES = {"clinician": "ng", "clinical_lead": "patel", "data_scientist": "lee", "auditor": "kim",
             "admin": "admin"}


def logged_in(settings: Settings, role: str) -> AppTest:
    user = get_user(open_store(settings), USERNAMES[role])
    assert user is not None and user.role == role
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    now = utc_now()
    at.session_state["modelboard_session"] = Session(user=user, started_at=now, last_active_at=now)
    return at


@contextmanager
def full_error_details() -> Iterator[None]:
    """The app shows only exception types (.streamlit/config.toml); tests need the message."""
    before = st_config.get_option("client.showErrorDetails")
    st_config.set_option("client.showErrorDetails", "full")
    try:
        yield
    finally:
        st_config.set_option("client.showErrorDetails", before)


def clinician_on_v2(settings: Settings, page: str) -> AppTest:
    """A clinician on a review page with the evaluated sepsis-icu v2 selected."""
    at = logged_in(settings, "clinician")
    at.switch_page(f"../pages/{page}.py").run()
    versions = at.selectbox[0]
    return versions.select_index(versions.options.index("sepsis-icu v2")).run()


def page_texts(at: AppTest) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.title] + [e.value for e in at.caption]
    parts += [str(e.value) for e in at.error] + [str(e.value) for e in at.warning] + [str(e.value) for e in at.info]
    return "\n".join(str(p) for p in parts)


def test_login_page_is_shown_when_logged_out(demo_env: Settings) -> None:
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert "DEMO" in page_texts(at)


def test_the_server_process_refuses_to_unpickle_whatever_started_it(demo_env: Settings, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A bare `streamlit run app/main.py` with the guard set to allow: once the app has run, MLflow itself
    refuses to unpickle a model in this process (docs/decisions/0002)."""
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    pickled = tmp_path / "pickled-model"
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1]))
    mlflow.sklearn.save_model(model, pickled, serialization_format="cloudpickle")
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    assert mlflow.sklearn.load_model(str(pickled)) is not None  # what any process could do before the app ran
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT).run()
    assert not at.exception
    with pytest.raises(Exception, match="MLFLOW_ALLOW_PICKLE_DESERIALIZATION"):
        mlflow.sklearn.load_model(str(pickled))


def test_login_form_logs_in_and_rejects_wrong_password(demo_env: Settings) -> None:
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT).run()
    at.text_input[0].input("ng")
    at.text_input[1].input("wrong password!")
    at.button[0].click().run()
    assert "Login failed" in page_texts(at)
    at.text_input[1].input("ng-icu-demo-2026")
    at.button[0].click().run()
    assert not at.exception
    assert isinstance(at.session_state["modelboard_session"], Session)
    assert "Home" in [t.value for t in at.title]


@pytest.mark.parametrize("role", ROLES)
def test_every_permitted_page_renders_for_every_role_with_nothing_raw_on_screen(
        demo_env: Settings, evaluated_v2: object, evaluated_charted: object, role: str) -> None:
    """Each page in its default state, with two evaluated versions (one with a text input and missing values) and a
    monitored production log behind it: no exception, no error, and no raw identifier (snake_case names,
    None/nan/{}, long ids: tests/app/screen.py) anywhere on screen, tables and charts included."""
    at = logged_in(demo_env, role)
    user = at.session_state["modelboard_session"].user
    raw: dict[str, list[str]] = {}
    for spec in pages_for(user):
        at.switch_page(f"../pages/{spec.file}").run()
        assert not at.exception, (spec.file, at.exception)
        assert not at.error, (spec.file, [e.value for e in at.error])
        assert spec.title in [t.value for t in at.title]
        assert screen_texts(at), spec.file  # the scanner reads the page (a blank read would pass anything)
        if found := raw_identifiers(at):
            raw[spec.file] = found
    assert not raw, raw


@pytest.mark.parametrize("role", ROLES)
def test_no_role_reaches_another_roles_page(demo_env: Settings, role: str) -> None:
    at = logged_in(demo_env, role)
    user: User = at.session_state["modelboard_session"].user
    allowed = {p.file for p in pages_for(user)}
    for spec in PAGES:
        if spec.file in allowed:
            continue
        # Through navigation: the page is not registered for this role, so it cannot be reached.
        at.run()
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(f"../pages/{spec.file}")
        # Run directly, bypassing navigation: core refuses with PermissionDenied.
        direct = AppTest.from_file(str(REPO / "pages" / spec.file), default_timeout=TIMEOUT)
        direct.session_state["modelboard_session"] = at.session_state["modelboard_session"]
        with full_error_details():
            direct.run()
        assert direct.exception, spec.file
        assert "PermissionDenied" in direct.exception[0].message or "may not" in direct.exception[0].message
        assert not direct.dataframe, f"{spec.file} rendered data for a {role}"


def test_registry_shows_production_alias_for_v1(demo_env: Settings) -> None:
    at = logged_in(demo_env, "clinician")
    at.switch_page("../pages/registry.py").run()
    assert at.selectbox[0].options == ["readmission-30d", "sepsis-icu", "sepsis-icu-charted"]
    at.selectbox[0].select("sepsis-icu").run()
    table = at.dataframe[0].value
    v1 = table[table["Version"] == 1].iloc[0]
    assert v1["Aliases"] == "production"
    assert set(table["Version"]) >= {1, 2, 3}
    assert "Of 100 patients who developed" in page_texts(at)


def test_idle_session_expires_to_login(demo_env: Settings) -> None:
    at = logged_in(demo_env, "clinician")
    old = utc_now() - timedelta(minutes=16)
    session = at.session_state["modelboard_session"]
    at.session_state["modelboard_session"] = Session(user=session.user, started_at=old, last_active_at=old)
    at.run()
    assert "without activity" in page_texts(at)
    assert [t.label for t in at.text_input] == ["Username", "Password"]


def test_admin_sees_a_locked_account_and_unlocks_it(demo_env: Settings) -> None:
    store = open_store(demo_env)
    policy = LoginPolicy()
    for _ in range(policy.max_failed_logins):
        with pytest.raises(AuthenticationFailed):
            authenticate(store, policy, "okafor", "not-the-password")
    at = logged_in(demo_env, "admin").run()
    assert any("Account okafor" in str(w.value) for w in at.warning)
    assert any("failed login" in str(i.value) for i in at.info)
    at.switch_page("../pages/users.py").run()
    account = next(s for s in at.selectbox if s.label == "Account")
    account.select("okafor").run()
    next(b for b in at.button if b.label == "Unlock").click().run()
    assert not at.exception
    assert authenticate(store, policy, "okafor", "okafor-icu-demo-2026").user.username == "okafor"


def test_fairness_page_shows_the_gap_the_oximeter_bias_causes(demo_env: Settings, evaluated_v2: object) -> None:
    at = clinician_on_v2(demo_env, "fairness")
    assert at.selectbox[1].value == "race_ethnicity"  # it opens on the finding (tests/app/test_fairness_finding.py)
    at.selectbox[1].select("sex").run()
    at.selectbox[1].select("race_ethnicity").run()
    assert not at.exception
    text = page_texts(at).replace("\\", "")  # user-facing text is Markdown-escaped (app.wording.plain)
    black = evaluated_v2.result["subgroups"]["race_ethnicity"]["Black"]["sensitivity"]  # type: ignore[attr-defined]
    outcome = "sepsis within 48 hours of ICU admission"
    assert f"Of 100 Black patients who developed {outcome}, the model flagged {black * 100:.0f}." in text
    assert "**Fail**" in text and "Gap in sensitivity between groups" in text
    gap = next(g for g in evaluated_v2.result["gaps"]  # type: ignore[attr-defined]
               if g["attribute_set"] == "race_ethnicity" and g["metric"] == "sensitivity")
    assert (f"in sensitivity: among {gap['furthest_group']} patients it is "
            f"{abs(gap['furthest_minus_overall']):.3f}") in text
    assert "for every 100 it expected (95 % CI" in text
    assert len(at.get("plotly_chart")) == 3
    at.slider[0].set_value(0.03).run()
    assert not at.exception and "At 0.03: of 100 patients who developed sepsis" in page_texts(at).replace("\\", "")


def test_the_charted_model_shows_who_misses_lactate_and_what_it_costs(demo_env: Settings,
                                                                      evaluated_charted: object) -> None:
    """The demo's model on inputs as charted: how its risks were read, and the missing-lactate disparity."""
    import pandas as pd

    result = evaluated_charted.result  # type: ignore[attr-defined]
    data = pd.read_parquet(open_registry(demo_env).evaluation_dataset_path("sepsis-icu-charted", 1))
    at = logged_in(demo_env, "clinician")
    at.switch_page("../pages/performance.py").run()
    at.selectbox[0].select_index(at.selectbox[0].options.index("sepsis-icu-charted v1")).run()
    assert not at.exception
    assert "because the model's standard prediction gives only a yes/no decision" in page_texts(at)
    at.toggle[0].set_value(True).run()  # the method, in the data scientists' terms
    assert ("from the model's own predict_proba (MLflow sklearn flavour); MLflow's pyfunc predict returns decisions"
            in "\n".join(str(c.value) for c in at.code))
    at.switch_page("../pages/fairness.py").run()
    at.selectbox[0].select_index(at.selectbox[0].options.index("sepsis-icu-charted v1")).run()
    at.selectbox[1].select("race_ethnicity").run()
    assert not at.exception
    text = page_texts(at)
    missing = data["lactate"].isna().groupby(data["race_ethnicity"]).mean()
    assert f"Lactate is missing for {missing['Black']:.0%} of Black patients" in text
    without = next(e for e in result["missing_flagged"] if e["column"] == "lactate")
    assert without["missing"]["sensitivity"] < without["present"]["sensitivity"] - 0.1  # what missingness costs
    assert (f"had no lactate, the model flagged {without['missing']['sensitivity'] * 100:.0f}") in text
    at.switch_page("../pages/explanations.py").run()
    at.selectbox[0].select_index(at.selectbox[0].options.index("sepsis-icu-charted v1")).run()
    assert not at.exception  # text values and missing lactate in the waterfall's labels
    explained = result["explanations"]
    assert explained["features"][-1] == "admission_source" and len(explained["features"]) == 11
    assert explained["method"] == "TreeExplainer (exact), summed per original input"
    at.toggle[0].set_value(True).run()
    assert f"SHAP, {explained['method']}, log-odds" in "\n".join(str(c.value) for c in at.code)


def test_data_scientist_submits_from_the_page(demo_env: Settings, evaluated_v2: object) -> None:
    at = logged_in(demo_env, "data_scientist")
    at.switch_page("../pages/submit.py").run()
    at.selectbox[0].select("sepsis-icu").run()
    at.selectbox[1].select(2).run()
    next(b for b in at.button if b.label == "Submit for clinical review").click().run()
    assert not at.exception
    assert any("is now in clinical review" in str(s.value) for s in at.success)


def test_submit_page_explains_what_an_unregistered_run_needs(demo_env: Settings) -> None:
    at = logged_in(demo_env, "data_scientist")
    at.switch_page("../pages/submit.py").run()
    at.radio[0].set_value("An MLflow run not registered yet").run()
    assert at.radio[1].disabled and at.radio[1].value.startswith("Upload")  # a run needs its evaluation file
    submit = next(b for b in at.button if b.label == "Submit for clinical review")
    submit.click().run()
    assert not at.exception
    assert "needs its evaluation data" in " ".join(str(e.value) for e in at.error)


@pytest.mark.parametrize("role,manages", [("clinician", False), ("clinical_lead", True), ("admin", True)])
def test_use_cases_page_shows_criteria_in_words(demo_env: Settings, role: str, manages: bool) -> None:
    at = logged_in(demo_env, role)
    at.switch_page("../pages/use_cases.py").run()
    at.selectbox[0].select("sepsis-icu-adult").run()
    assert not at.exception
    text = page_texts(at)
    assert "Of 100 patients who develop the outcome, the model flags at least 80" in text
    assert "flagged when the predicted risk is 0.06 or more" in text
    assert ("Import a use case" in [h.value for h in at.subheader]) is manages


def test_explanations_page_shows_spo2_and_a_missed_patient(demo_env: Settings, evaluated_v2: object) -> None:
    at = clinician_on_v2(demo_env, "explanations")
    assert not at.exception
    text = page_texts(at)
    assert "percentage points of risk" in text
    assert "The strongest driver is **Oxygen saturation by pulse oximetry (SpO2)**" in text
    assert at.selectbox[2].value.startswith("missed")
    assert "Outcome: missed" in text
    at.toggle[0].set_value(True).run()  # the method, for data scientists
    method = "\n".join(str(c.value) for c in at.code)
    assert "TreeExplainer" in method and "log-odds" in method


def test_compare_page_shows_deltas_and_flips(demo_env: Settings, evaluated_v2: object) -> None:
    at = clinician_on_v2(demo_env, "compare")
    assert not at.exception
    comparison = evaluated_v2.result["comparison"]  # type: ignore[attr-defined]
    assert comparison["production_version"] == 1
    labels = {m.label: m.value for m in at.metric}
    assert labels["Newly missed"] == str(comparison["flips"]["newly_missed"])
    assert "Candidate v2 against v1" in page_texts(at)


def test_model_card_page_shows_facts_missing_fields_and_exports(demo_env: Settings) -> None:
    at = logged_in(demo_env, "clinician")
    at.switch_page("../pages/model_card.py").run()
    at.selectbox[1].select(3).run()
    assert not at.exception
    warning = " ".join(str(w.value) for w in at.warning)
    user = at.session_state["modelboard_session"].user
    card = model_card.build_card(open_store(demo_env), open_registry(demo_env), user, "sepsis-icu", 3)
    missing = card.missing_required
    assert missing  # v3 is not evaluated: at least its performance and fairness are empty
    assert "Required fields still empty: " + ", ".join(f.label for f in missing) + "." in warning
    assert "Card fingerprint (SHA-256" in page_texts(at)
    assert not any(f.label == "Save narrative" for f in at.button)  # clinicians read; owners edit
    owner = logged_in(demo_env, "data_scientist")
    owner.switch_page("../pages/model_card.py").run()
    assert any(b.label == "Save narrative" for b in owner.button)


def test_performance_page_plots_calibration_and_decision_curve(demo_env: Settings, evaluated_v2: object) -> None:
    at = clinician_on_v2(demo_env, "performance")
    assert not at.exception
    at.toggle[0].set_value(True).run()  # methods shown, for data scientists
    table = at.dataframe[0].value
    sensitivity = table[table["Measure"] == "Sensitivity"].iloc[0]
    expected = evaluated_v2.result["overall"]["sensitivity"]  # type: ignore[attr-defined]
    assert float(sensitivity["Value (95 % interval)"].split(" ")[0]) == pytest.approx(expected, abs=0.005)
    assert sensitivity["Method"] == "Wilson score"
    assert f"the model flagged {expected * 100:.0f}" in sensitivity["In plain words"]
    text = page_texts(at)
    methods = "\n".join(str(c.value) for c in at.code)
    assert "Calibration slope" in text and "Wald, from the inverse Hessian" in methods
    assert "percentile bootstrap, 200 resamples, seed 20261124" in methods and len(at.get("plotly_chart")) == 2
