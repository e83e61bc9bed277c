"""Raw layer: from extract bytes to typed, checked, pseudonymised lines.

Pure functions only (bytes/str/frames in, frames out): dialect detection and record
splitting (`dialect`, `parsing`), the input contracts as column specs (`schema`), the
quarantine rules of ``docs/regles.md`` as Polars expressions (`rules`), and NIR
pseudonymisation and masking (`pseudo`). File and database I/O live in ``flows/ingest.py``.
"""
