"""A warehouse ingested from the project's generator, for the model and snapshot tests."""

from __future__ import annotations


def ingested_sample(tmp_path_factory, n_assures: int, graine: int):
    """A warehouse ingested from the project's generator: ``n_assures`` assurés in ELSM 31 and
    64B from 01/01/2024 to 30/06/2026 (corrected lines and cancellations included, no defect),
    two nightly files; shared by the model and snapshot tests (module-scoped fixtures)."""
    import datetime as dt

    from flows.ingest import ingest_paths
    from flows.sample import generate_sample
    from flows.settings import DataPaths
    from synthetic.echantillon import Parametres

    landing = tmp_path_factory.mktemp("arrivee")
    generate_sample(
        landing,
        Parametres(
            n_assures=n_assures,
            debut=dt.date(2024, 1, 1),
            fin=dt.date(2026, 6, 30),
            elsm=("31", "64B"),
            graine=graine,
            taux_defauts=0.0,
        ),
        nuits=2,
    )
    paths = DataPaths(tmp_path_factory.mktemp("donnees"))
    ingest_paths(paths, [landing], b"cle-de-test")
    return paths
