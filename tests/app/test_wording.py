"""User-written text is shown as typed: no links, images or icons from a rationale."""

import re

from app.wording import plain


def test_plain_escapes_every_markdown_construct_and_keeps_the_text() -> None:
    hostile = "Dr. Ng (Clinician) ![x](http://evil.example/beacon.png) [click](javascript:x) :material/home: **b** # h"
    escaped = plain(hostile)
    assert re.sub(r"\\(.)", r"\1", escaped) == hostile
    assert re.search(r"(?<!\\)[\[\]()!:*#]", escaped) is None, escaped  # every such character is escaped
