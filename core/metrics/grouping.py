"""Turning sensitive-attribute columns into integer group codes, once per attribute set.

Each column is factorised once; a pair's code is combined arithmetically from
its two columns' codes and compacted to the combinations that occur, which is
far cheaper than factorising string tuples for every intersection.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

INTERSECTION = " × "


@dataclass(frozen=True)
class GroupCodes:
    """Each row's group as an integer, and the label of each group (in code order)."""

    attribute_set: str
    codes: np.ndarray
    labels: tuple[str, ...]


def attribute_sets(attributes: list[str], *, pairwise: bool = True) -> list[tuple[str, ...]]:
    """Each attribute alone, then (optionally) every pair: the grid clinicians review."""
    singles = [(a,) for a in attributes]
    return singles + (list(combinations(attributes, 2)) if pairwise else [])


def _compact_dtype(n_groups: int) -> type[np.signedinteger]:
    # Small integer codes let numpy's stable sort use radix sort.
    return np.int16 if n_groups < 2**15 else np.int64


def encode_all(sensitive: pd.DataFrame, sets: list[tuple[str, ...]]) -> list[GroupCodes]:
    """Group codes for every attribute set (single columns and pairs), labels sorted."""
    single: dict[str, tuple[np.ndarray, list[str]]] = {}
    for column in {c for s in sets for c in s}:
        single[column] = _factorize(sensitive[column])
    out = []
    for columns in sets:
        if len(columns) == 1:
            codes, labels = single[columns[0]]
        else:
            codes, labels = _pair(single[columns[0]], single[columns[1]])
        out.append(GroupCodes(INTERSECTION.join(columns), codes.astype(_compact_dtype(len(labels))), tuple(labels)))
    return out


def _factorize(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes and sorted labels exactly as `pd.factorize(column.astype(str), sort=True)` gives them, without
    turning every row into a string first: only distinct values (and missing ones, as str() names them) are."""
    codes, uniques = pd.factorize(column)
    codes = np.asarray(codes, dtype=np.int64)
    labels = [str(u) for u in uniques]
    missing = codes < 0
    if missing.any():
        missing_codes, missing_labels = pd.factorize(column[missing].astype(str))
        codes[missing] = len(labels) + missing_codes
        labels += [str(u) for u in missing_labels]
    ordered, remap = np.unique(np.array(labels, dtype=object), return_inverse=True)
    return np.asarray(remap, dtype=np.int64)[codes], [str(label) for label in ordered]


def _pair(a: tuple[np.ndarray, list[str]], b: tuple[np.ndarray, list[str]]) -> tuple[np.ndarray, list[str]]:
    width = len(b[1])
    combined = a[0] * width + b[0]
    present = np.flatnonzero(np.bincount(combined, minlength=len(a[1]) * width))
    remap = np.full(len(a[1]) * width, -1, dtype=np.int64)
    remap[present] = np.arange(len(present))
    labels = [f"{a[1][p // width]} / {b[1][p % width]}" for p in present]
    return remap[combined], labels


def encode(sensitive: pd.DataFrame, columns: tuple[str, ...]) -> GroupCodes:
    """Group codes for one attribute set."""
    return encode_all(sensitive, [columns])[0]
