"""Malformed evaluation files through the Submit page's upload widget: an inline error, no exception, nothing written.

The cases are in tests/bad_files.py; the page runs on a small installation of its own (one use case, one model
logged with plain MLflow), as a data scientist. The inline error says what the command line says, with the name
the user gave the file (the upload is checked under a random name while it is kept).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.cli import main
from core.domain.access import Session
from core.domain.clock import utc_now
from core.services.audit_verification import verify_chain
from core.services.installation import open_store
from core.services.submission import StoredEvaluation
from tests.bad_files import ACCEPTED, MODEL, REFUSED, Case, Installation, install, submit_clean, write, written

REPO = Path(__file__).resolve().parents[2]
MAIN = str(REPO / "app" / "main.py")
TIMEOUT = 60
RANDOM_NAME = re.compile(r"[0-9a-f]{32}\.(csv|parquet)")
CHECKED_BEFORE_KEPT = {"oversize", "wrong-extension"}  # refused by the upload service in its own words


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Installation:
    return install(tmp_path_factory.mktemp("bad-uploads"))


@pytest.fixture(scope="module")
def clean_evaluation(installation: Installation, tmp_path_factory: pytest.TempPathFactory) -> StoredEvaluation:
    return submit_clean(installation, tmp_path_factory.mktemp("clean"))


@pytest.fixture
def home(installation: Installation, monkeypatch: pytest.MonkeyPatch) -> Installation:
    monkeypatch.setenv("MODELBOARD_HOME", str(installation.settings.home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    return installation


def upload(installation: Installation, file_name: str, content: bytes) -> AppTest:
    """A data scientist uploads `content` as `file_name` for v1 and presses Submit."""
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    now = utc_now()
    at.session_state["modelboard_session"] = Session(user=installation.scientist, started_at=now, last_active_at=now)
    at.switch_page("../pages/submit.py").run()
    at.radio[1].set_value("Upload a CSV or Parquet file").run()
    at.file_uploader[0].set_value((file_name, content, "text/csv")).run()
    next(b for b in at.button if b.label == "Submit for clinical review").click().run()
    return at


def cli_line(installation: Installation, path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    main(["submit", "--model", MODEL, "--version", "1", "--eval-data", str(path),
          "--home", str(installation.settings.home)])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, lines  # other stderr lines are logging noise from earlier tests' closed streams
    return lines[0].removeprefix("error: ")


# A browser never sends a file of another type: the widget's own filter refuses it before the page sees it (AppTest,
# which bypasses that filter, meets Streamlit's server-side refusal instead). The widget's filter is checked below.
THROUGH_THE_WIDGET = [c for c in REFUSED if c.name != "wrong-extension"]


def test_the_upload_widget_offers_only_csv_and_parquet(home: Installation) -> None:
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    now = utc_now()
    at.session_state["modelboard_session"] = Session(user=home.scientist, started_at=now, last_active_at=now)
    at.switch_page("../pages/submit.py").run()
    at.radio[1].set_value("Upload a CSV or Parquet file").run()
    assert sorted(at.file_uploader[0].proto.type) == [".csv", ".parquet"]


@pytest.mark.parametrize("case", THROUGH_THE_WIDGET, ids=[c.name for c in THROUGH_THE_WIDGET])
def test_refused_upload_shows_one_inline_error_and_writes_nothing(
        home: Installation, case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    path = write(case, home.clean, tmp_path)
    before = written(home.settings)
    at = upload(home, case.file_name, path.read_bytes())
    assert not at.exception, at.exception
    errors = [str(e.value) for e in at.error]
    assert len(errors) == 1, errors
    assert errors[0].startswith("Not submitted: ") and case.file_name in errors[0], errors[0]
    assert not RANDOM_NAME.search(errors[0]), errors[0]
    for fragment in case.expect:
        assert fragment in errors[0], errors[0]
    if case.name not in CHECKED_BEFORE_KEPT:
        assert errors[0].removeprefix("Not submitted: ") == cli_line(home, path, capsys)
    assert not at.success
    assert written(home.settings) == before
    assert verify_chain(open_store(home.settings)).ok


@pytest.mark.parametrize("case", [c for c in ACCEPTED if c.same_data], ids=lambda c: c.name)
def test_bom_and_crlf_uploads_are_the_clean_files_evaluation(home: Installation, clean_evaluation: StoredEvaluation,
                                                            case: Case, tmp_path: Path) -> None:
    before = written(home.settings)
    at = upload(home, case.file_name, write(case, home.clean, tmp_path).read_bytes())
    assert not at.exception and not at.error, [str(e.value) for e in at.error]
    assert [str(s.value) for s in at.success] == [f"{MODEL} v1 was already evaluated on this data and is now in "
                                                  "clinical review."]
    assert written(home.settings) == before
