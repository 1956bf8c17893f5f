"""The one colour-blind-safe palette of every chart (Okabe & Ito, 2008), with dashes and marker shapes so that
colour is never the only cue. Core computes some charts' colours (the audit log's kinds), so it lives here."""

from __future__ import annotations

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
HIGHLIGHT = "#D55E00"  # vermillion: the group or alert the reader must see first
MUTED = "#9E9E9E"  # grey: everything else, and "other" categories
LIGHT = "#D0D0D0"
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "triangle-down", "star", "hexagon", "cross")
