"""Pure, vectorised metric functions: f(y_true, y_score, *, sensitive_features, ...).

No storage, no UI. fairlearn and scikit-learn are the reference the tests check
every number against; this engine exists because it is orders of magnitude
faster on subgroup grids and bootstrap resamples (see `make bench`).
"""
