"""The Submit page's "Packaged model" upload, fed hostile zips through its file_uploader: one inline error line,
no exception, nothing registered, audited or left on disk."""

from __future__ import annotations

from core.config import Settings
from tests.app.test_pages import logged_in, page_texts
from tests.core.test_hostile_zips import HOSTILE, _state, left_under

CASES = ["not a zip", "truncated (half)", "empty zip", "no MLmodel", "absolute path", "parent traversal",
         "symbolic link", "bomb: absurd ratio", "bomb: too many members", "bomb: lies about its size",
         "corrupt member (bad deflate stream)"]


def test_hostile_zips_are_refused_inline_on_the_submit_page(demo_env: Settings) -> None:
    at = logged_in(demo_env, "data_scientist")
    at.switch_page("../pages/submit.py").run()
    at.selectbox[0].select("sepsis-icu").run()
    at.radio[0].set_value("A packaged MLflow model (.zip)").run()
    before = _state(demo_env)
    for case in CASES:
        content, message = HOSTILE[case]
        at.file_uploader[0].set_value(("model.zip", content, "application/zip"))
        at.file_uploader[1].set_value(("eval.csv", b"age,sepsis_48h\n70,1\n", "text/csv"))
        at.run()
        at.button[0].click().run()
        assert not at.exception, (case, at.exception)
        errors = [str(e.value) for e in at.error]
        assert len(errors) == 1 and errors[0].startswith("Not submitted: ") and message in errors[0], (case, errors)
        assert "\n" not in errors[0] and "Traceback" not in page_texts(at)
        assert left_under(demo_env.home) == [], case
        if case == "parent traversal":
            assert "'../evil.txt'" in errors[0]
    assert _state(demo_env) == before

