"""Domain values and rules: plain frozen dataclasses, no storage, no UI."""
