"""What differs between DuckDB and PostgreSQL in ModelBoard's SQL, named in one place.

ModelBoard's SQL is written once, in the dialect both engines share. Where they differ, the difference is named
here and nowhere else (docs/decisions/0018):

- **Placeholders**: DuckDB takes `?`, psycopg `%s` (and then a literal `%` must be written `%%`).
- **`DOUBLE`**: PostgreSQL spells it `DOUBLE PRECISION`.
- **JSON columns are `TEXT` in PostgreSQL**: the audit chain hashes each event's detail as the exact text that was
  written, and `TEXT` keeps it byte for byte (`jsonb` would reorder keys and drop spaces, `json` cannot be
  compared or assigned from text without casts). Only the schema (CREATE/ALTER) says `JSON`; queries read it
  through the two functions below.
- **`json_extract` / `json_extract_string`** with a `$.key` path exist in DuckDB; PostgreSQL gets two SQL
  functions of the same names and meaning (`POSTGRES_FUNCTIONS`, created by the first migration there).
- **DataFrames handed to SQL**: DuckDB reads a registered pandas frame in place; PostgreSQL gets a temporary
  table of the same name, filled with COPY (`postgres_type` says which column type each dtype becomes).
- **Table listing**: PostgreSQL's `information_schema.tables` also lists the system catalogues, so only the
  connection's own schema is asked about.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

_QUOTED = re.compile(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")")
_DOUBLE = re.compile(r"\bDOUBLE\b(?!\s+PRECISION)")
_JSON_TYPE = re.compile(r"\bJSON\b")
_DDL = re.compile(r"^\s*(CREATE|ALTER)\s+TABLE\b", re.IGNORECASE)

OWN_TABLES = {
    "duckdb": "SELECT table_name FROM information_schema.tables",
    "postgresql": "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()",
}


def to_postgres(sql: str, *, has_params: bool) -> str:
    """ModelBoard's SQL (written for DuckDB) as psycopg must be given it; string literals are left alone except
    that `%` is doubled wherever psycopg will look for placeholders."""
    ddl = bool(_DDL.match(sql))
    parts = _QUOTED.split(sql)
    out = []
    for i, part in enumerate(parts):
        if has_params:
            part = part.replace("%", "%%")
        if i % 2 == 0:  # outside quotes
            if has_params:
                part = part.replace("?", "%s")
            part = _DOUBLE.sub("DOUBLE PRECISION", part)
            if ddl:
                part = _JSON_TYPE.sub("TEXT", part)
        out.append(part)
    return "".join(out)


def postgres_type(dtype: Any) -> str:
    """The column type of a temporary table that holds a pandas column of this dtype."""
    if pd.api.types.is_bool_dtype(dtype):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(dtype):
        return "BIGINT"
    if pd.api.types.is_float_dtype(dtype):
        return "DOUBLE PRECISION"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "TIMESTAMP"
    return "TEXT"


# DuckDB's `$.key` JSON paths (a plain key, dotted keys, or one quoted key `$."a.b"`) as PostgreSQL path arrays;
# JSON null and a missing key both read as SQL NULL, as DuckDB's casts of them do.
POSTGRES_FUNCTIONS: tuple[str, ...] = (
    r"""
    CREATE OR REPLACE FUNCTION modelboard_json_path(path text) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
        SELECT CASE WHEN path LIKE '$."%' AND right(path, 1) = '"'
                    THEN ARRAY[replace(substr(path, 4, length(path) - 4), '\"', '"')]
                    ELSE string_to_array(substr(path, 3), '.') END
    $$
    """,
    r"""
    CREATE OR REPLACE FUNCTION json_extract(doc text, path text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
        SELECT CASE WHEN v IS NULL OR json_typeof(v) = 'null' THEN NULL ELSE v::text END
        FROM (SELECT (doc::json) #> modelboard_json_path(path) AS v) AS found
    $$
    """,
    r"""
    CREATE OR REPLACE FUNCTION json_extract_string(doc text, path text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
        SELECT (doc::json) #>> modelboard_json_path(path)
    $$
    """,
)
