"""``ru target``: the RU codes, scores and exclusions of the arrêts en cours at D.

Reads ``arrets`` at D (``ru build``), the routing ledger (``routage``, when it exists), the
catalogue ``config/catalogue_ru.yml`` and the promoted chronicity model; writes the rows of D
of ``ciblage`` (replacing them) and runs the table's data checks.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.cli_common import AsOfOption, DataOption, fail
from flows.settings import CONFIG_DIR, DataPaths, Settings

if TYPE_CHECKING:
    from transforms.catalogue import Catalogue

log = logging.getLogger("ru.target")
CATALOGUE_PATH = CONFIG_DIR / "catalogue_ru.yml"


class TargetError(RuntimeError):
    """Targeting cannot run (missing input, invalid model); the message says what to do."""


def load_catalogue(path: Path = CATALOGUE_PATH) -> Catalogue:
    """Read and validate the RU catalogue file (errors name the file and the code)."""
    import yaml

    from transforms.catalogue import CatalogueError, parse_catalogue

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CatalogueError(f"catalogue RU introuvable : {path}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{Path(path).name} : YAML invalide ({exc})") from exc
    return parse_catalogue(raw, path)


@dataclass
class TargetSummary:
    """What ``ru target`` did for one date."""

    as_of: dt.date
    arrets_en_cours: int = 0
    lignes: int = 0
    cibles: int = 0
    exclus: dict[str, int] = field(default_factory=dict)
    par_code: dict[str, int] = field(default_factory=dict)
    scores: int = 0
    modele: str | None = None
    codes_non_evalues: list[str] = field(default_factory=list)
    controles: str = "non exécutés"
    duree_s: float = 0.0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat()
        return d


def target_at(
    paths: DataPaths,
    as_of: dt.date,
    settings: Settings,
    catalogue_path: Path = CATALOGUE_PATH,
    *,
    checks: bool = True,
) -> TargetSummary:
    """Target the arrêts at ``as_of`` and replace the rows of that date in ``ciblage``.

    The rows are inserted, checked (``fail``-level rules) and committed in one transaction: a
    failed check raises ``flows.checks.ChecksFailed`` and leaves the previous rows of D.
    """
    import polars as pl

    from expectations.contract import load_contract
    from flows.warehouse import record_step, table_exists, warehouse
    from models.registry import load_promoted
    from models.scoring import reasons_for, score_arrets
    from transforms.marts.ciblage import ciblage, codes_evalues, with_reasons

    start = time.perf_counter()
    summary = TargetSummary(as_of=as_of)
    catalogue = load_catalogue(catalogue_path)
    modele = load_promoted(paths.modeles)
    if modele is None:
        log.warning(
            "aucun modèle de chronicité promu (%s) : ciblage sur les seules règles, scores "
            "vides ; lancez `ru train` pour en entraîner un.",
            paths.modeles / "chronicite",
        )
    else:
        summary.modele = modele.version
    _, sautes = codes_evalues(catalogue, as_of, modele is not None)
    summary.codes_non_evalues = [c.code for c in sautes]
    if sautes:
        log.warning(
            "code(s) non évalué(s) faute de modèle promu : %s",
            ", ".join(summary.codes_non_evalues),
        )

    with warehouse(paths) as con:
        if not table_exists(con, "arrets"):
            raise TargetError("table arrets absente : lancez d'abord `ru build`.")
        arrets = con.sql("select * from arrets where as_of = $as_of", params={"as_of": as_of}).pl()
        if arrets.is_empty():
            raise TargetError(
                f"aucun arrêt construit au {as_of:%d/%m/%Y} : lancez d'abord "
                f"`ru build --as-of {as_of}`."
            )
        routage = None
        if table_exists(con, "routage"):
            routage = con.sql(
                "select arret_id, as_of, statut from routage "
                "where as_of < $as_of and as_of >= $as_of - $jours",
                params={"as_of": as_of, "jours": settings.ciblage.en_attente_jours},
            ).pl()

        scores = None
        if modele is not None:
            scores = score_arrets(modele, arrets, as_of)
            summary.scores = scores.height
        result = ciblage(
            arrets,
            catalogue,
            as_of,
            {
                "action_recente_jours": settings.ciblage.action_recente_jours,
                "en_attente_jours": settings.ciblage.en_attente_jours,
            },
            scores=scores,
            routage=routage,
        )
        if modele is not None:
            # Reasons cost one prediction per feature: only for the arrêts kept in ciblage.
            result = with_reasons(result, reasons_for(modele, arrets, as_of, result["arret_id"]))
        summary.arrets_en_cours = int(arrets["en_cours"].sum())
        contract = load_contract("ciblage")
        con.execute(contract.ddl())
        con.execute("begin transaction")
        try:
            con.execute("delete from ciblage where as_of = $as_of", {"as_of": as_of})
            con.register("ciblage_du_jour", result)
            con.execute("insert into ciblage by name select * from ciblage_du_jour")
            con.unregister("ciblage_du_jour")
            record_step(con, "ciblage", as_of, result.height)
            if checks:
                from flows.checks import check_date

                summary.controles = check_date(con, paths, ("ciblage",), as_of)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise

    summary.lignes = result.height
    summary.cibles = int(result.filter(~pl.col("exclu")).height)
    summary.exclus = {
        r["motif_exclusion"]: r["len"]
        for r in result.filter(pl.col("exclu"))
        .group_by("motif_exclusion")
        .len()
        .iter_rows(named=True)
    }
    summary.par_code = {
        r["code_ru"]: r["len"]
        for r in result.drop_nulls("code_ru")
        .group_by("code_ru")
        .len()
        .sort("code_ru")
        .iter_rows(named=True)
    }
    summary.duree_s = round(time.perf_counter() - start, 3)
    return summary


def target(
    as_of: AsOfOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Affiche le résumé en JSON.")] = False,
    data: DataOption = None,
) -> None:
    """Cible les arrêts en cours à la date D : codes RU, score de chronicité, exclusions.

    Écrit la table `ciblage` (les lignes de D sont remplacées). Sans modèle promu (`ru train`),
    le ciblage tourne sur les seules règles : scores vides, code RU01 non évalué.
    """
    import json

    from flows.checks import ChecksFailed
    from flows.console import out
    from flows.settings import ConfigError, load_settings, resolve_data_dir
    from flows.warehouse import WarehouseError, default_as_of, warehouse
    from models.registry import ModelError
    from transforms.catalogue import CatalogueError

    try:
        settings = load_settings()
        paths = resolve_data_dir(data, settings)
        if as_of is None:
            with warehouse(paths, read_only=True) as con:
                day = default_as_of(con)
        else:
            day = as_of.date()
        summary = target_at(paths, day, settings)
    except (
        ConfigError,
        CatalogueError,
        WarehouseError,
        TargetError,
        ModelError,
        ChecksFailed,
    ) as exc:
        fail(str(exc))
    if json_output:
        out.print_json(json.dumps(summary.as_dict(), ensure_ascii=False))
        return
    motifs = ", ".join(f"{k} {v}" for k, v in sorted(summary.exclus.items()))
    out.print(
        f"Ciblage au {summary.as_of:%d/%m/%Y} : {summary.arrets_en_cours} arrêt(s) en cours, "
        f"{summary.cibles} dossier(s) ciblé(s), {sum(summary.exclus.values())} exclu(s)"
        + (f" ({motifs})" if motifs else "")
    )
    if summary.par_code:
        out.print("Par code : " + ", ".join(f"{k} {v}" for k, v in summary.par_code.items()))
    if summary.modele:
        out.print(f"Modèle de chronicité {summary.modele} : {summary.scores} arrêt(s) scoré(s).")
    else:
        out.print(
            "Aucun modèle promu : scores vides, code(s) non évalué(s) : "
            + (", ".join(summary.codes_non_evalues) or "aucun")
        )
    out.print(f"Contrôles : {summary.controles} ; durée {summary.duree_s:.1f} s")
