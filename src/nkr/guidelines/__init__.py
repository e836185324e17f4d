"""One package per guideline: its data file (``guideline.toml``) and its rules module."""
