"""The version a person sees first (core.services.worklist): the rule by hand, then on the demo, where what
"awaits your review" means is cross-checked against the Sign-off state that decides whether a signature counts."""

from __future__ import annotations

import pytest

from core.config import Settings
from core.domain.access import User
from core.services import catalog, signoff, worklist
from core.services.auth import get_user
from core.services.installation import open_registry, open_store
from core.services.worklist import VersionOption, choose_default
from tests.conftest import copy_demo

MODEL = "sepsis-icu"


def option(version: int, *, model: str = MODEL, production: bool = False, evaluated: bool = False,
           awaits: bool = False) -> VersionOption:
    return VersionOption(model, version, "in_review" if evaluated else "registered", production, evaluated,
                         awaits_you=awaits)


# -- the rule, by hand -----------------------------------------------------------------------------------------
def test_the_newest_version_awaiting_you_comes_first() -> None:
    options = [option(4), option(3, evaluated=True, awaits=True), option(2, evaluated=True, awaits=True),
               option(1, production=True, evaluated=True)]
    assert choose_default(options) == (1, "awaits_you")


def test_else_the_version_in_production_then_the_newest_evaluated_then_the_newest() -> None:
    assert choose_default([option(3), option(2, evaluated=True), option(1, production=True)]) == (2, "in_production")
    assert choose_default([option(3), option(2, evaluated=True), option(1, evaluated=True)]) == (1, "newest_evaluated")
    assert choose_default([option(2), option(1)]) == (0, "newest")


def test_a_version_asked_for_by_a_link_wins_and_an_unknown_one_is_ignored() -> None:
    options = [option(3), option(2, evaluated=True, awaits=True), option(1, production=True)]
    assert choose_default(options, asked=3) == (0, "asked")
    assert choose_default(options, asked=9) == (1, "awaits_you")


def test_across_models_the_model_asked_for_is_kept() -> None:
    options = [option(2, evaluated=True, awaits=True), option(1, model="other", evaluated=True)]
    assert choose_default(options, asked_model="other") == (1, "newest_evaluated")
    assert choose_default(options, asked_model="other", asked=1) == (1, "asked")


def test_labels_say_what_the_version_is_in_words() -> None:
    assert option(2, evaluated=True, awaits=True).label == "v2 — awaits your review"
    assert option(1, production=True, evaluated=True).label == "v1 — in production"
    assert option(3).label == "v3 — not yet evaluated"
    built = VersionOption(MODEL, 2, "in_review", False, True, submitted_by_you=True)
    assert built.label == "v2 — in clinical review, submitted by you"


# -- on the demo (sepsis-icu v2 evaluated; v1 in production; v3 registered only) -------------------------------
@pytest.fixture(scope="module")
def demo(reviewed_demo: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """This module's own copy of the reviewed demo: the session demo gains versions other modules register."""
    return copy_demo(reviewed_demo, tmp_path_factory.mktemp("worklist") / "home")


def person(settings: Settings, username: str) -> User:
    user = get_user(open_store(settings), username)
    assert user is not None, username
    return user


def menu(settings: Settings, username: str, model: str = MODEL) -> worklist.VersionMenu:
    return worklist.version_menu(open_store(settings), open_registry(settings), person(settings, username), model)


@pytest.mark.parametrize("username", ["ng", "patel", "diaz"])
def test_a_signer_who_has_not_signed_opens_sepsis_icu_on_v2(demo: Settings,
                                                            username: str) -> None:
    found = menu(demo, username)
    assert (found.default.version, found.reason, found.default.label) == (2, "awaits_you", "v2 — awaits your review")
    state = signoff.sign_off_state(open_store(demo), open_registry(demo),
                                   person(demo, username), MODEL, 2)
    # what Sign-off itself says: evaluated, not in production, not theirs, nothing of theirs counts yet
    assert state.evaluation is not None and not state.in_production
    assert username not in state.submitters
    assert not [s for s in state.standings if s.valid and s.signature.signer == username]


def test_the_data_scientist_who_built_v2_is_not_sent_to_sign_it(demo: Settings) -> None:
    found = menu(demo, "lee")
    state = signoff.sign_off_state(open_store(demo), open_registry(demo),
                                   person(demo, "lee"), MODEL, 2)
    assert "lee" in state.submitters
    assert found.option(2).submitted_by_you and not found.option(2).awaits_you
    assert (found.default.version, found.reason) == (1, "in_production")


@pytest.mark.parametrize("username", ["kim", "admin"])
def test_roles_that_never_sign_open_on_the_version_in_production(demo: Settings,
                                                                username: str) -> None:
    found = menu(demo, username)
    production = open_registry(demo).version_for_alias(MODEL, "production")
    assert (found.default.version, found.reason) == (production, "in_production")
    assert not any(o.awaits_you for o in found.options)
    assert found.default.label.startswith(f"v{production} — in production")


def test_an_unevaluated_version_never_awaits_anyone(demo: Settings) -> None:
    newest = max(v.version for v in open_registry(demo).list_versions(MODEL))
    assert open_store(demo).query("SELECT 1 FROM evaluations WHERE model_name = ? AND model_version = ? "
                                           "AND status = 'complete'", [MODEL, newest]) == []
    assert menu(demo, "ng").option(newest).label == f"v{newest} — not yet evaluated"


def test_the_review_pages_picker_follows_the_same_rule(demo: Settings) -> None:
    store, registry = open_store(demo), open_registry(demo)
    ng = worklist.evaluation_menu(store, registry, person(demo, "ng"))
    chosen = ng.evaluations[ng.index]
    assert ng.reason == "awaits_you" and ng.options[ng.index].awaits_you
    assert (chosen.model, chosen.version) == (MODEL, 2)
    assert len(ng.evaluations) == len(ng.options) and all(o.evaluated for o in ng.options)
    asked = worklist.evaluation_menu(store, registry, person(demo, "kim"), model=MODEL, version=2)
    assert (asked.evaluations[asked.index].version, asked.reason) == (2, "asked")


def test_home_lists_what_waits_for_you_and_says_plainly_what_was_never_reviewed(demo: Settings) -> None:
    store, registry = open_store(demo), open_registry(demo)
    waiting = worklist.waiting_for(store, registry, person(demo, "ng"))
    assert (MODEL, 2) in [(o.model, o.version) for o in waiting]
    assert worklist.waiting_for(store, registry, person(demo, "kim")) == []
    items = catalog.attention_items(registry, person(demo, "ng"), store)
    assert (items[0].model, items[0].version, items[0].headline) == (MODEL, 2, f"{MODEL} v2 waits for your review.")
    unsigned = [i for i in items if "production" in i.aliases and not open_store(demo).query(
        "SELECT 1 FROM signatures WHERE model_name = ? AND model_version = ?", [i.model, i.version])]
    assert unsigned, "the demo's production versions predate ModelBoard: nobody signed them"
    for item in unsigned:
        assert item.never_reviewed
        assert item.headline == (f"{item.model} v{item.version} is in clinical use but never reviewed in "
                                 "ModelBoard: no one has signed it.")
        assert "not yet submitted" not in item.status_label
