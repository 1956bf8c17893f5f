"""The embedded demo: a synthetic ICU, its models and its production log."""
