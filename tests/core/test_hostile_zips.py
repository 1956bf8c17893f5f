"""Hostile packaged-model zips: bombs, escaping paths, links, damage. Each is refused with one clear line, before
anything is logged, registered or audited, and leaves nothing on disk under MODELBOARD_HOME."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest
from mlflow import MlflowClient

from core.config import Settings, load_settings
from core.domain.access import command_line_operator
from core.errors import ValidationError
from core.services.installation import open_registry, open_store
from core.services.packaged_model import unpack

OPERATOR = command_line_operator("pytest")
MLMODEL = (b"flavors:\n  python_function: {loader_module: mlflow.sklearn}\nsignature:\n"
           b"  inputs: '[{\"type\": \"double\", \"name\": \"age\", \"required\": true}]'\n")


def zip_of(entries: dict[str, bytes], *, symlink: str | None = None, stored: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = 0o120777 << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def with_declared_size(content: bytes, member: str, size: int) -> bytes:
    """A zip whose headers under-declare `member`'s uncompressed size (a bomb that lies to size checks)."""
    data, name = bytearray(content), member.encode()
    for signature, offset in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
        at = data.find(signature)
        while at >= 0:
            name_at = at + (46 if signature == b"PK\x01\x02" else 30)
            if data[name_at:name_at + len(name)] == name:
                data[at + offset:at + offset + 4] = struct.pack("<I", size)
            at = data.find(signature, at + 4)
    return bytes(data)


def damaged(content: bytes) -> bytes:
    """`content` with bytes inside a member's compressed stream overwritten."""
    data = bytearray(content)
    at = data.find(b"PK\x03\x04", data.find(b"PK\x03\x04") + 4)  # the second member's local header
    data[at + 40:at + 60] = b"\xff" * 20
    return bytes(data)


GOOD = zip_of({"model/MLmodel": MLMODEL, "model/model.bin": bytes(range(256)) * 40})
BIG_ZEROS = zip_of({"model/MLmodel": MLMODEL, "model/weights.bin": b"\0" * 60_000_000})

# name -> (zip bytes, what the one-line refusal says)
HOSTILE: dict[str, tuple[bytes, str]] = {
    "not a zip": (b"MLmodel\nflavors: {}\n", "not a zip file"),
    "zero bytes": (b"", "not a zip file"),
    "truncated (end cut off)": (GOOD[:-30], "not a zip file"),
    "truncated (half)": (GOOD[: len(GOOD) // 2], "not a zip file"),
    "empty zip": (zip_of({}), "exactly one MLmodel"),
    "no MLmodel": (zip_of({"model/model.pkl": b"x", "model/conda.yaml": b"name: x"}), "exactly one MLmodel"),
    "two MLmodel files": (zip_of({"a/MLmodel": MLMODEL, "b/MLmodel": MLMODEL}), "exactly one MLmodel"),
    "MLmodel is a folder": (zip_of({"model/MLmodel/": b"", "model/x": b"x"}), "exactly one MLmodel"),
    "parent traversal": (zip_of({"model/MLmodel": MLMODEL, "../evil.txt": b"x"}), "unsafe path"),
    "traversal inside the folder": (zip_of({"model/MLmodel": MLMODEL, "model/../../evil": b"x"}), "unsafe path"),
    "absolute path": (zip_of({"model/MLmodel": MLMODEL, "/etc/evil": b"x"}), "unsafe path"),
    "windows traversal": (zip_of({"model/MLmodel": MLMODEL, "model\\..\\..\\evil": b"x"}), "unsafe path"),
    "symbolic link": (zip_of({"model/MLmodel": MLMODEL}, symlink="model/link"), "symbolic link"),
    "file and folder clash": (zip_of({"model/MLmodel": MLMODEL, "model/x": b"1", "model/x/y": b"2"}),
                              "both as a file and as a folder"),
    "bomb: absurd ratio": (zip_of({"model/MLmodel": MLMODEL, "model/weights.bin": b"\0" * 5_000_000}), "zip bomb"),
    "bomb: huge member": (BIG_ZEROS, "zip bomb"),
    "bomb: too many members": (zip_of({"model/MLmodel": MLMODEL, **{f"model/f{i}": b"" for i in range(1_001)}}),
                               "over the limit of 1,000"),
    "bomb: lies about its size": (with_declared_size(zip_of({"model/MLmodel": MLMODEL,
                                                             "model/weights.bin": b"\0" * 5_000_000}),
                                                     "model/weights.bin", 1_000), "damaged"),
    "corrupt member (bad deflate stream)": (damaged(zip_of({"model/MLmodel": MLMODEL,
                                                            "model/data.bin": bytes(range(256)) * 100})),
                                            "damaged"),
    "corrupt MLmodel (bad CRC)": (with_declared_size(GOOD, "model/MLmodel", 10), "damaged"),
}


def left_under(home: Path) -> list[Path]:
    uploads = home / "uploads"
    return list(uploads.rglob("*")) if uploads.exists() else []


def test_a_good_zip_still_unpacks(settings: Settings) -> None:
    folder, inputs = unpack(settings, GOOD)
    assert [c.name for c in inputs] == ["age"] and (folder / "model.bin").read_bytes() == bytes(range(256)) * 40


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_zip_is_refused_by_unpack_and_leaves_nothing(settings: Settings, tmp_path: Path, case: str) -> None:
    content, message = HOSTILE[case]
    outside = sorted(p.name for p in tmp_path.iterdir() if p != settings.home)
    with pytest.raises(ValidationError, match=message) as refused:
        unpack(settings, content)
    assert "\n" not in str(refused.value)
    assert left_under(settings.home) == []
    assert sorted(p.name for p in tmp_path.iterdir() if p != settings.home) == outside
    assert not Path("/etc/evil").exists()


def test_total_expansion_over_the_limit_is_refused(tmp_path: Path) -> None:
    """Many members each under the ratio floor, together over five times the upload limit."""
    settings = load_settings(env={"MODELBOARD_MAX_UPLOAD_MB": "1"}, home=tmp_path / "home")
    content = zip_of({"model/MLmodel": MLMODEL, **{f"model/part{i}": b"\0" * 900_000 for i in range(6)}})
    with pytest.raises(ValidationError, match="over the 5 MB limit"):
        unpack(settings, content)
    assert left_under(settings.home) == []


def test_a_member_damaged_after_others_were_written_removes_the_folder(settings: Settings) -> None:
    content = with_declared_size(zip_of({"model/MLmodel": MLMODEL, "model/a.bin": b"a" * 1000,
                                         "model/z.bin": b"\0" * 100_000}), "model/z.bin", 50)
    with pytest.raises(ValidationError, match="damaged"):
        unpack(settings, content)
    assert left_under(settings.home) == []


def _state(settings: Settings) -> tuple[object, ...]:
    store, client = open_store(settings), MlflowClient(settings.tracking_uri)
    audit = store.query_one("SELECT count(*) AS n, max(id) AS last FROM audit_events")
    versions = sorted((v.name, v.version) for v in client.search_model_versions())
    runs = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    return audit, versions, runs


@pytest.mark.parametrize("case", ["not a zip", "parent traversal", "symbolic link", "bomb: absurd ratio",
                                  "bomb: too many members", "corrupt member (bad deflate stream)", "empty zip"])
def test_hostile_zip_through_the_service_writes_nothing(demo_settings: Settings, case: str) -> None:
    from core.services.packaged_model import submit_packaged_upload

    before = _state(demo_settings)
    with pytest.raises(ValidationError, match=HOSTILE[case][1]):
        submit_packaged_upload(demo_settings, open_store(demo_settings), open_registry(demo_settings), OPERATOR,
                               model="sepsis-icu", content=HOSTILE[case][0], eval_name="eval.csv",
                               eval_content=b"age,sepsis_48h\n70,1\n")
    assert _state(demo_settings) == before
    assert left_under(demo_settings.home) == []
