"""``ru report``: the steering report at D, one self-contained HTML file in French.

``rapports/rapport_<AAAAMMJJ>.html`` holds everything inline (CSS, SVG charts drawn with
matplotlib): nothing is fetched when it is opened, so it can be mailed or put on a share.
It reads the indicator tables at D (``indicateurs_f1``, ``indicateurs_p4``,
``indicateurs_pdp``, ``volumes``), the quarantine, and the promoted model's metadata.
The same warehouse and D give the same file, byte for byte.
"""

from __future__ import annotations

import html
import io
import json
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from flows.cli_common import DataOption, fail
from flows.settings import DataPaths

TEMPLATE = Path(__file__).parent / "templates" / "rapport.html"
CIBLE_F1 = 0.70
MAX_ELSM_LINES = 12
MOIS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
MOIS_COURTS = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.")
MOIS_COURTS += ("oct.", "nov.", "déc.")
NNBSP = "\u202f"  # narrow no-break space: French thousands separator
NBSP = "\u00a0"


class ReportError(RuntimeError):
    """The report cannot be written; the French message says why."""


# ----------------------------------------------------------------- French formatting


def fr_nombre(value: float | int | None, decimales: int = 0) -> str:
    """``1234567.891`` → ``1 234 567,89`` (narrow no-break spaces, decimal comma)."""
    if value is None:
        return "—"
    text = f"{value:,.{decimales}f}"
    return text.replace(",", NNBSP).replace(".", ",")


def fr_pourcent(value: float | None, decimales: int = 1) -> str:
    """A ratio as a French percentage: ``0.7`` → ``70,0 %``."""
    if value is None:
        return "—"
    return f"{fr_nombre(value * 100, decimales)}{NBSP}%"


def fr_date(value: date) -> str:
    return value.strftime("%d/%m/%Y")


def fr_mois(value: date, court: bool = False) -> str:
    """``2026-03-01`` → ``mars 2026`` (``mars 26`` when short)."""
    if court:
        return f"{MOIS_COURTS[value.month - 1]} {value:%y}"
    return f"{MOIS[value.month - 1]} {value.year}"


# ----------------------------------------------------------------- data


@dataclass
class ReportData:
    """Everything the report shows, read from the warehouse at D (plain rows)."""

    as_of: date
    f1: list[dict] = field(default_factory=list)
    p4: list[dict] = field(default_factory=list)
    pdp: list[dict] = field(default_factory=list)
    pdp_historique: list[dict] = field(default_factory=list)
    volumes: list[dict] = field(default_factory=list)
    quarantaine: list[dict] = field(default_factory=list)
    modele: dict | None = None
    versions: dict = field(default_factory=dict)


def _rows(con, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _table_names(con) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'main'"
        ).fetchall()
    }


def read_report_data(con, as_of: date, modeles: Path) -> ReportData:
    """Read the indicator rows at D, the quarantine counts per rule and the promoted model.

    ``pdp_historique`` is the national PDP coverage per stored date ≤ D (the trend);
    ``quarantaine`` one row per (source, regle) with the number of quarantined lines.
    """
    tables = _table_names(con)
    needed = ("indicateurs_f1", "indicateurs_p4", "indicateurs_pdp", "volumes")
    missing = [t for t in needed if t not in tables]
    if missing:
        raise ReportError(
            f"table(s) {', '.join(missing)} absente(s) : lancez d'abord `ru indicators`."
        )
    [(count,)] = con.execute(
        "select sum(n) from ("
        + " union all ".join(
            f'select count(*) as n from "{t}" where as_of = $as_of'
            for t in ("indicateurs_f1", "indicateurs_p4", "indicateurs_pdp", "volumes")
        )
        + ")",
        {"as_of": as_of},
    ).fetchall()
    if not count:
        raise ReportError(
            f"aucun indicateur calculé au {fr_date(as_of)} : lancez d'abord "
            f"`ru indicators --as-of {as_of.isoformat()}`."
        )
    data = ReportData(as_of=as_of)
    data.f1 = _rows(
        con, "select * from indicateurs_f1 where as_of = ? order by elsm, mois", [as_of]
    )
    data.p4 = _rows(
        con, "select * from indicateurs_p4 where as_of = ? order by elsm, mois", [as_of]
    )
    data.pdp = _rows(con, "select * from indicateurs_pdp where as_of = ? order by elsm", [as_of])
    data.pdp_historique = _rows(
        con,
        "select as_of, sum(arrets_longs) as arrets_longs, sum(arrets_avec_pdp) as "
        "arrets_avec_pdp, sum(arrets_avec_pdp) / sum(arrets_longs) as taux "
        "from indicateurs_pdp where as_of <= ? and as_of > ? - interval 400 day "
        "group by as_of order by as_of",
        [as_of, as_of],
    )
    data.volumes = _rows(
        con,
        "select * from volumes where as_of = ? order by elsm, semaine_iso, axe, valeur",
        [as_of],
    )
    if "quarantaine" in tables:
        data.quarantaine = _rows(
            con,
            "select source, regle, count(*) as lignes from "
            "(select source, unnest(regles) as regle from quarantaine) "
            "group by source, regle order by lignes desc, source, regle",
        )
    data.modele = read_promoted_model(modeles)
    return data


def read_promoted_model(modeles: Path) -> dict | None:
    """The promoted chronicity model's metadata (``promu.json`` → ``<version>/metadata.json``).

    None when no model is promoted. The result has ``version`` and the metadata as stored.
    """
    pointer = modeles / "chronicite" / "promu.json"
    if not pointer.exists():
        return None
    try:
        promu = json.loads(pointer.read_text(encoding="utf-8"))
        version = str(promu.get("version") or promu.get("modele") or "")
        folder = modeles / "chronicite" / version
        metadata_path = folder / "metadata.json"
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, AttributeError) as exc:
        raise ReportError(f"modèle promu illisible ({pointer}) : {exc}") from exc
    return {"version": version, "promu": promu, "metadata": metadata}


# ----------------------------------------------------------------- charts


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "svg.fonttype": "none",  # text stays text: smaller, selectable, readable aloud
            "svg.hashsalt": "ru-ij",  # stable ids: same data, same file
            "font.family": "DejaVu Sans",
            "font.size": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titlesize": 11,
            "axes.titleweight": "bold",
        }
    )
    return plt


def _percent_axis(ax, axis: str = "y") -> None:
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _pos: fr_pourcent(v, 0))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _titles(ax, xlabel: str, ylabel: str | None, title: str, legend: bool = False) -> None:
    """Axis labels, title and (optionally) the legend, in the report's one style."""
    ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    ax.set_title(title)
    if legend:
        ax.legend(fontsize=8, frameon=False)


def _count_axis(ax, axis: str = "y") -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(MaxNLocator(integer=True))
    target.set_major_formatter(FuncFormatter(lambda v, _pos: fr_nombre(v)))


def _svg(fig, label: str) -> str:
    """The figure as an inline ``<svg>`` element with an accessible name."""
    plt = _pyplot()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    # matplotlib's RDF block names vocabularies by URL: drop it, the report names no URL
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.DOTALL)
    attrs = f'<svg role="img" aria-label="{html.escape(label)}" class="graphique" '
    return attrs + text[len("<svg ") :]


def chart_f1(rows: list[dict]) -> str:
    """F1 per month: each ELSM (up to 12; beyond, the spread 10–90 %) and all ELSMs
    together, against the 70 % target; provisional months drawn with hollow markers."""
    plt = _pyplot()
    months = sorted({r["mois"] for r in rows})
    index = {m: i for i, m in enumerate(months)}
    fig, ax = plt.subplots(figsize=(8.5, 4))
    elsms = sorted({r["elsm"] for r in rows})
    if len(elsms) <= MAX_ELSM_LINES:
        for elsm in elsms:
            mine = [r for r in rows if r["elsm"] == elsm]
            ax.plot(
                [index[r["mois"]] for r in mine],
                [r["taux"] for r in mine],
                marker="o",
                markersize=3,
                linewidth=1,
                alpha=0.7,
                label=f"ELSM {elsm}",
            )
    else:
        import numpy as np

        lows, highs = [], []
        for m in months:
            values = [r["taux"] for r in rows if r["mois"] == m]
            lows.append(float(np.quantile(values, 0.1)))
            highs.append(float(np.quantile(values, 0.9)))
        ax.fill_between(
            range(len(months)), lows, highs, alpha=0.2, label="ELSM : 10 % à 90 % central"
        )
    national = []
    for m in months:
        mine = [r for r in rows if r["mois"] == m]
        num = sum(r["dossiers_avec_action"] for r in mine)
        den = sum(r["dossiers_routes"] for r in mine)
        national.append((index[m], num / den, any(r["provisoire"] for r in mine)))
    ax.plot(
        [x for x, _, _ in national],
        [y for _, y, _ in national],
        color="black",
        linewidth=2.5,
        marker="o",
        label="Toutes ELSM",
    )
    provisional = [(x, y) for x, y, p in national if p]
    if provisional:
        ax.plot(
            [x for x, _ in provisional],
            [y for _, y in provisional],
            linestyle="none",
            marker="o",
            markersize=9,
            markerfacecolor="white",
            markeredgecolor="black",
            label="Mois provisoire",
        )
    ax.axhline(CIBLE_F1, color="#c0392b", linestyle="--", linewidth=1.5, label="Cible 70 %")
    ax.set_ylim(0, 1.05)
    _percent_axis(ax)
    ax.set_xticks(range(len(months)), [fr_mois(m, court=True) for m in months], rotation=45)
    _titles(
        ax,
        "Mois du routage",
        "Dossiers avec action effective sous 30 jours",
        "F1 — actions effectives suite aux ciblages RU, par mois",
    )
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return _svg(fig, "Graphique F1 par ELSM et par mois, avec la cible de 70 %")


def chart_p4(rows: list[dict]) -> str:
    """P4 per month, all ELSMs together, with the number of arrêts above each bar."""
    plt = _pyplot()
    months = sorted({r["mois"] for r in rows})
    values, counts = [], []
    for m in months:
        mine = [r for r in rows if r["mois"] == m]
        den = sum(r["arrets_avec_action"] for r in mine)
        values.append(sum(r["arrets_termines"] for r in mine) / den)
        counts.append(den)
    fig, ax = plt.subplots(figsize=(8.5, 3.6))
    bars = ax.bar(range(len(months)), values, color="#2e86c1")
    for bar, value, n in zip(bars, values, counts, strict=True):
        ax.annotate(
            f"{fr_pourcent(value, 0)}\n({fr_nombre(n)})",
            (bar.get_x() + bar.get_width() / 2, value),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_ylim(0, 1.15)
    _percent_axis(ax)
    ax.set_xticks(range(len(months)), [fr_mois(m, court=True) for m in months], rotation=45)
    _titles(
        ax,
        "Mois de la première action effective",
        "Arrêts terminés sous 90 jours",
        "P4 — reprise dans les 90 jours suivant l'action, toutes ELSM",
    )
    return _svg(fig, "Graphique P4 par mois, toutes ELSM")


def chart_pdp(rows: list[dict], historique: list[dict]) -> str:
    """PDP coverage per ELSM at D (bars) and, when several dates are stored, the national
    coverage over time."""
    plt = _pyplot()
    rows = sorted(rows, key=lambda r: (r["taux"], r["elsm"]))
    trend = len(historique) >= 2
    height = max(2.5, 0.28 * len(rows) + 1.2)
    if trend:
        fig, (ax, ax2) = plt.subplots(
            1, 2, figsize=(9.5, height), gridspec_kw={"width_ratios": [3, 2]}
        )
    else:
        fig, ax = plt.subplots(figsize=(8.5, height))
    labels = [f"ELSM {r['elsm']}" for r in rows]
    ax.barh(labels, [r["taux"] for r in rows], color="#27ae60")
    for i, r in enumerate(rows):
        ax.annotate(
            f" {fr_pourcent(r['taux'], 0)} ({fr_nombre(r['arrets_avec_pdp'])}/"
            f"{fr_nombre(r['arrets_longs'])})",
            (r["taux"], i),
            va="center",
            fontsize=8,
        )
    ax.set_xlim(0, 1.3)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1])
    _percent_axis(ax, "x")
    _titles(
        ax, "Arrêts de 426 jours d'IJ ou plus avec une action PDP", None, "Couverture PDP par ELSM"
    )
    if trend:
        ax2.plot(
            [h["as_of"] for h in historique],
            [h["taux"] for h in historique],
            color="#27ae60",
            linewidth=2,
        )
        ax2.set_ylim(0, 1.05)
        _percent_axis(ax2)
        _titles(ax2, "Date d'arrêté", "Couverture PDP, toutes ELSM", "Évolution")
        ticks = [historique[0]["as_of"], historique[-1]["as_of"]]
        ax2.set_xticks(ticks, [fr_date(t) for t in ticks])
    return _svg(fig, "Graphique de la couverture PDP par ELSM")


def _week_rows(volumes: list[dict], axe: str) -> tuple[str | None, list[dict]]:
    weeks = sorted({r["semaine_iso"] for r in volumes})
    if not weeks:
        return None, []
    week = weeks[-1]
    return week, [r for r in volumes if r["semaine_iso"] == week and r["axe"] == axe]


def _sum_by(rows: list[dict], key: str, *fields: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for r in rows:
        acc = out.setdefault(r[key], dict.fromkeys(fields, 0))
        for f in fields:
            acc[f] = (acc[f] or 0) + (r[f] or 0)
    return out


def chart_codes(volumes: list[dict]) -> str:
    """Dossiers per primary RU code in D's week, all ELSMs: routed and backlog stacked."""
    plt = _pyplot()
    week, rows = _week_rows(volumes, "code_ru")
    totals = _sum_by(rows, "valeur", "dossiers_affectes", "dossiers_en_attente")
    codes = sorted(totals, reverse=True)
    fig, ax = plt.subplots(figsize=(8.5, max(2.5, 0.3 * len(codes) + 1.2)))
    routed = [totals[c]["dossiers_affectes"] for c in codes]
    waiting = [totals[c]["dossiers_en_attente"] for c in codes]
    ax.barh(codes, routed, color="#2e86c1", label="Affectés à une file")
    ax.barh(codes, waiting, left=routed, color="#f5b041", label="En attente")
    _count_axis(ax, "x")
    _titles(
        ax, "Dossiers", "Code RU principal", f"Dossiers par code RU, semaine {week}", legend=True
    )
    return _svg(fig, f"Graphique des dossiers par code RU, semaine {week}")


def chart_acteurs(volumes: list[dict]) -> str:
    """Dossiers routed per actor in D's week, all ELSMs, next to the weekly capacity."""
    plt = _pyplot()
    week, rows = _week_rows(volumes, "acteur")
    totals = _sum_by(rows, "valeur", "dossiers_affectes", "capacite")
    order = [a for a in ("TECH", "CSAM", "ISM", "MC") if a in totals]
    fig, ax = plt.subplots(figsize=(7, 3.4))
    xs = range(len(order))
    ax.bar([x - 0.2 for x in xs], [totals[a]["capacite"] for a in order], width=0.4,
           color="#d5dbdb", label="Capacité de la semaine")  # fmt: skip
    ax.bar([x + 0.2 for x in xs], [totals[a]["dossiers_affectes"] for a in order], width=0.4,
           color="#2e86c1", label="Dossiers affectés")  # fmt: skip
    ax.set_xticks(list(xs), order)
    _count_axis(ax)
    _titles(
        ax,
        "File (acteur)",
        "Dossiers",
        f"Dossiers par acteur et capacité, semaine {week}",
        legend=True,
    )
    return _svg(fig, f"Graphique des dossiers par acteur, semaine {week}")


def chart_remplissage(volumes: list[dict]) -> str:
    """Fill of each ELSM's queues against its weekly capacity in D's week (100 % = full)."""
    plt = _pyplot()
    week, rows = _week_rows(volumes, "total")
    rows = sorted(rows, key=lambda r: (r["taux_capacite"] or 0, r["elsm"]))
    fig, ax = plt.subplots(figsize=(8.5, max(2.5, 0.28 * len(rows) + 1.2)))
    labels = [f"ELSM {r['elsm']}" for r in rows]
    values = [r["taux_capacite"] or 0 for r in rows]
    colors = ["#95a5a6" if r["capacite"] is None else "#2e86c1" for r in rows]
    ax.barh(labels, values, color=colors)
    for i, r in enumerate(rows):
        text = (
            " sans capacité"
            if r["capacite"] is None
            else f" {fr_nombre(r['dossiers_affectes'])} / {fr_nombre(r['capacite'])}"
        )
        ax.annotate(text, (values[i], i), va="center", fontsize=8)
    ax.axvline(1, color="#c0392b", linestyle="--", linewidth=1)
    ax.set_xlim(0, max([1.3, *[v + 0.3 for v in values]]))
    _percent_axis(ax, "x")
    _titles(
        ax,
        "Dossiers affectés / capacité de la semaine",
        None,
        f"Remplissage des files par ELSM, semaine {week}",
    )
    return _svg(fig, f"Graphique du remplissage des files par ELSM, semaine {week}")


def chart_attente(volumes: list[dict]) -> str:
    """Backlog (dossiers left waiting at each week's last run) per ISO week, all ELSMs."""
    plt = _pyplot()
    totals = _sum_by(
        [r for r in volumes if r["axe"] == "total"],
        "semaine_iso",
        "dossiers_en_attente",
        "dossiers_affectes",
    )
    weeks = sorted(totals)
    fig, ax = plt.subplots(figsize=(8.5, 3.4))
    ax.bar(range(len(weeks)), [totals[w]["dossiers_en_attente"] for w in weeks],
           color="#f5b041", label="En attente")  # fmt: skip
    ax.plot(range(len(weeks)), [totals[w]["dossiers_affectes"] for w in weeks],
            color="#2e86c1", marker="o", label="Affectés")  # fmt: skip
    ax.set_xticks(range(len(weeks)), weeks, rotation=45, fontsize=8)
    _count_axis(ax)
    _titles(
        ax,
        "Semaine ISO",
        "Dossiers",
        "Stock en attente et dossiers affectés par semaine, toutes ELSM",
        legend=True,
    )
    return _svg(fig, "Graphique du stock en attente par semaine")


def chart_quarantaine(rows: list[dict]) -> str:
    """Quarantined lines per rule and source (a line breaking two rules counts in both)."""
    plt = _pyplot()
    rows = sorted(rows, key=lambda r: (r["lignes"], r["source"], r["regle"]))
    labels = [f"{r['regle']} ({r['source']})" for r in rows]
    fig, ax = plt.subplots(figsize=(8.5, max(2.5, 0.28 * len(rows) + 1.2)))
    ax.barh(labels, [r["lignes"] for r in rows], color="#c0392b")
    for i, r in enumerate(rows):
        ax.annotate(f" {fr_nombre(r['lignes'])}", (r["lignes"], i), va="center", fontsize=8)
    _count_axis(ax, "x")
    _titles(ax, "Lignes en quarantaine", None, "Quarantaine par règle")
    return _svg(fig, "Graphique des lignes en quarantaine par règle")


# ----------------------------------------------------------------- HTML


def _table(headers: list[str], rows: list[list[str]], caption: str) -> str:
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return (
        f"<details><summary>Données : {html.escape(caption)}</summary>"
        f"<table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table></details>"
    )


def _figure(svg: str, sentence: str, table: str = "") -> str:
    return (
        f'<figure class="graphique">{svg}<figcaption>{html.escape(sentence)}</figcaption>'
        f"{table}</figure>"
    )


def _empty(sentence: str) -> str:
    return f'<p class="vide">{html.escape(sentence)}</p>'


def _national(rows: list[dict], num: str, den: str) -> tuple[float | None, int, int]:
    n = sum(r[num] for r in rows)
    d = sum(r[den] for r in rows)
    return (n / d if d else None), n, d


def section_f1(data: ReportData) -> str:
    if not data.f1:
        return _empty("Aucun dossier affecté sur la période : F1 n'est pas calculable.")
    final = [r for r in data.f1 if not r["provisoire"]]
    sentence = (
        "Part des dossiers affectés à une file qui ont reçu une action effective sur le même "
        "arrêt dans les 30 jours, par mois de routage ; la ligne pointillée rouge est la "
        "cible nationale de 70 %. Les ronds vides signalent les mois encore provisoires "
        "(moins de 30 jours après la fin du mois)."
    )
    if final:
        last = max(r["mois"] for r in final)
        taux, n, d = _national([r for r in final if r["mois"] == last], "dossiers_avec_action",
                               "dossiers_routes")  # fmt: skip
        sentence += (
            f" Dernier mois définitif, {fr_mois(last)} : {fr_pourcent(taux)} "
            f"({fr_nombre(n)} dossiers sur {fr_nombre(d)}), "
            + ("au-dessus de la cible." if taux >= CIBLE_F1 else "sous la cible.")
        )
    table = _table(
        ["ELSM", "Mois", "Dossiers affectés", "Avec action effective", "F1", "Statut"],
        [
            [
                r["elsm"],
                fr_mois(r["mois"]),
                fr_nombre(r["dossiers_routes"]),
                fr_nombre(r["dossiers_avec_action"]),
                fr_pourcent(r["taux"]),
                "provisoire" if r["provisoire"] else "définitif",
            ]
            for r in data.f1
        ],
        "F1 par ELSM et par mois",
    )
    return _figure(chart_f1(data.f1), sentence, table)


def section_p4(data: ReportData) -> str:
    if not data.p4:
        return _empty(
            "Aucun mois publié pour P4 : il faut au moins trois mois d'actions effectives "
            "avant la date d'arrêté."
        )
    last = max(r["mois"] for r in data.p4)
    taux, n, d = _national([r for r in data.p4 if r["mois"] == last], "arrets_termines",
                           "arrets_avec_action")  # fmt: skip
    sentence = (
        "Part des arrêts maladie et AT/MP dont la première action effective tombe dans le "
        "mois et qui se sont terminés dans les 90 jours suivants (plus d'IJ payée ni de "
        "prescription en cours), toutes ELSM ; entre parenthèses, le nombre d'arrêts. Publié "
        f"avec trois mois de décalage : dernier mois, {fr_mois(last)}, {fr_pourcent(taux)} "
        f"({fr_nombre(n)} arrêts sur {fr_nombre(d)})."
    )
    table = _table(
        ["ELSM", "Mois", "Arrêts avec action", "Terminés sous 90 jours", "P4"],
        [
            [
                r["elsm"],
                fr_mois(r["mois"]),
                fr_nombre(r["arrets_avec_action"]),
                fr_nombre(r["arrets_termines"]),
                fr_pourcent(r["taux"]),
            ]
            for r in data.p4
        ],
        "P4 par ELSM et par mois",
    )
    return _figure(chart_p4(data.p4), sentence, table)


def section_pdp(data: ReportData) -> str:
    if not data.pdp:
        return _empty("Aucun arrêt en cours de 426 jours d'IJ ou plus à la date d'arrêté.")
    taux, n, d = _national(data.pdp, "arrets_avec_pdp", "arrets_longs")
    sentence = (
        f"Parmi les arrêts en cours au {fr_date(data.as_of)} avec au moins 426 jours d'IJ "
        "(14 mois), part de ceux qui ont déjà eu une action de prévention de la désinsertion "
        f"professionnelle (PDP), par ELSM. Toutes ELSM : {fr_pourcent(taux)} "
        f"({fr_nombre(n)} sur {fr_nombre(d)})."
    )
    if len(data.pdp_historique) >= 2:
        first = data.pdp_historique[0]
        sentence += (
            f" À droite, l'évolution depuis le {fr_date(first['as_of'])} "
            f"({fr_pourcent(first['taux'])} alors)."
        )
    table = _table(
        ["ELSM", "Arrêts de 426 jours ou plus", "Avec action PDP", "Couverture"],
        [
            [
                r["elsm"],
                fr_nombre(r["arrets_longs"]),
                fr_nombre(r["arrets_avec_pdp"]),
                fr_pourcent(r["taux"]),
            ]
            for r in data.pdp
        ],
        "couverture PDP par ELSM",
    )
    return _figure(chart_pdp(data.pdp, data.pdp_historique), sentence, table)


def section_volumes(data: ReportData) -> str:
    if not data.volumes:
        return _empty("Aucun dossier orienté sur les 26 dernières semaines.")
    week, totals = _week_rows(data.volumes, "total")
    routed = sum(r["dossiers_affectes"] for r in totals)
    waiting = sum(r["dossiers_en_attente"] for r in totals)
    capacity = sum(r["capacite"] or 0 for r in totals)
    no_capacity = sorted(r["elsm"] for r in totals if r["capacite"] is None)
    parts = [
        _figure(
            chart_codes(data.volumes),
            f"Semaine {week}, toutes ELSM : dossiers par code RU principal, affectés à une "
            f"file (bleu) ou restés en attente faute de capacité (orange). En tout "
            f"{fr_nombre(routed)} affectés et {fr_nombre(waiting)} en attente.",
        ),
        _figure(
            chart_acteurs(data.volumes),
            f"Semaine {week}, toutes ELSM : dossiers affectés à chaque file (technicien, "
            f"CSAM, ISM, médecin conseil) à côté de la capacité hebdomadaire de la file "
            f"({fr_nombre(routed)} affectés pour une capacité de {fr_nombre(capacity)}).",
        ),
        _figure(
            chart_remplissage(data.volumes),
            f"Semaine {week} : dossiers affectés rapportés à la capacité hebdomadaire de "
            "chaque ELSM ; la ligne rouge marque 100 % (files pleines)."
            + (
                f" Sans capacité déclarée (tout part en attente) : ELSM {', '.join(no_capacity)}."
                if no_capacity
                else ""
            ),
        ),
        _figure(
            chart_attente(data.volumes),
            "Par semaine ISO, toutes ELSM : dossiers restés en attente à la dernière "
            "exécution de la semaine (barres) et dossiers affectés (ligne).",
        ),
    ]
    return "".join(parts)


def section_quarantaine(data: ReportData) -> str:
    if not data.quarantaine:
        return _empty("Aucune ligne en quarantaine.")
    sentence = (
        "Lignes des extractions rejetées à l'ingestion, par règle enfreinte et par source "
        "(paiements d'IJ ou actions), depuis le début ; une ligne qui enfreint deux règles "
        "compte dans les deux. Le détail ligne par ligne est dans la table quarantaine."
    )
    table = _table(
        ["Source", "Règle", "Lignes"],
        [[r["source"], r["regle"], fr_nombre(r["lignes"])] for r in data.quarantaine],
        "quarantaine par règle",
    )
    return _figure(chart_quarantaine(data.quarantaine), sentence, table)


METRIQUES = {
    "roc_auc": ("AUC ROC", 3),
    "average_precision": ("précision moyenne (AP)", 3),
    "brier": ("score de Brier (plus bas = mieux)", 3),
    "lift_top10": ("lift des 10 % les plus à risque", 2),
    "n": ("arrêts de validation", 0),
    "positifs": ("dont devenus longs (180 jours)", 0),
}


def section_modele(data: ReportData) -> str:
    """The promoted model: version, training date and validation metrics next to the
    baseline that ranks by duration alone (metadata ``metriques.modele`` and
    ``metriques.reference_duree``)."""
    if data.modele is None:
        return _empty(
            "Aucun modèle promu : le ciblage tourne sur les seules règles, sans score ni code RU01."
        )
    meta = data.modele["metadata"]
    parts = [f"<p>Modèle promu : version <strong>{html.escape(data.modele['version'])}</strong>"]
    if meta.get("as_of"):
        parts.append(f", entraîné avec les données au {html.escape(str(meta['as_of']))}")
    promu_le = data.modele["promu"].get("promu_le")
    if promu_le:
        parts.append(f", promu le {html.escape(str(promu_le))}")
    parts.append(".</p>")
    metriques = meta.get("metriques") or {}
    modele = metriques.get("modele") or {}
    reference = metriques.get("reference_duree") or {}
    keys = [k for k in METRIQUES if k in modele] + [
        k for k in modele if k not in METRIQUES and isinstance(modele[k], int | float)
    ]
    if not keys:
        parts.append(_empty("Les métadonnées du modèle ne contiennent pas de métriques."))
        return "".join(parts)
    parts.append(
        '<table class="metriques"><caption>Validation sur les instantanés les plus récents '
        '(découpage temporel)</caption><thead><tr><th scope="col">Métrique</th>'
        '<th scope="col">Modèle</th><th scope="col">Référence : durée seule</th></tr>'
        "</thead><tbody>"
    )
    for key in keys:
        label, decimals = METRIQUES.get(key, (key, 3))
        ref = reference.get(key)
        parts.append(
            f"<tr><td>{html.escape(label)}</td><td>{fr_nombre(modele[key], decimals)}</td>"
            f"<td>{fr_nombre(ref, decimals) if isinstance(ref, int | float) else '—'}</td></tr>"
        )
    parts.append("</tbody></table>")
    return "".join(parts)


def _cards(data: ReportData) -> str:
    cards = []
    final = [r for r in data.f1 if not r["provisoire"]]
    if final:
        last = max(r["mois"] for r in final)
        taux, _, _ = _national([r for r in final if r["mois"] == last], "dossiers_avec_action",
                               "dossiers_routes")  # fmt: skip
        cards.append((f"F1, {fr_mois(last)}", fr_pourcent(taux), "cible 70 %"))
    elif data.f1:
        last = max(r["mois"] for r in data.f1)
        taux, _, _ = _national([r for r in data.f1 if r["mois"] == last], "dossiers_avec_action",
                               "dossiers_routes")  # fmt: skip
        cards.append((f"F1, {fr_mois(last)}", fr_pourcent(taux), "provisoire, cible 70 %"))
    else:
        cards.append(("F1", "—", "aucun dossier affecté"))
    if data.p4:
        last = max(r["mois"] for r in data.p4)
        taux, _, _ = _national([r for r in data.p4 if r["mois"] == last], "arrets_termines",
                               "arrets_avec_action")  # fmt: skip
        cards.append((f"P4, {fr_mois(last)}", fr_pourcent(taux), "reprise sous 90 jours"))
    else:
        cards.append(("P4", "—", "aucun mois publié"))
    taux, _, d = _national(data.pdp, "arrets_avec_pdp", "arrets_longs")
    cards.append(("Couverture PDP", fr_pourcent(taux), f"{fr_nombre(d)} arrêts longs"))
    week, totals = _week_rows(data.volumes, "total")
    cards.append(
        (
            f"Semaine {week or '—'}",
            fr_nombre(sum(r["dossiers_affectes"] for r in totals)),
            f"affectés, {fr_nombre(sum(r['dossiers_en_attente'] for r in totals))} en attente",
        )
    )
    return "".join(
        f'<div class="carte"><div class="titre">{html.escape(t)}</div>'
        f'<div class="valeur">{html.escape(v)}</div><div class="note">{html.escape(n)}</div>'
        "</div>"
        for t, v, n in cards
    )


def render_report(data: ReportData) -> str:
    """The report's HTML text: the template filled with the sections at D."""
    from string import Template

    template = Template(TEMPLATE.read_text(encoding="utf-8"))
    versions = ", ".join(f"{k} {v}" for k, v in sorted(data.versions.items()))
    return template.substitute(
        date=fr_date(data.as_of),
        cartes=_cards(data),
        f1=section_f1(data),
        p4=section_p4(data),
        pdp=section_pdp(data),
        volumes=section_volumes(data),
        quarantaine=section_quarantaine(data),
        modele=section_modele(data),
        versions=html.escape(versions),
    )


# ----------------------------------------------------------------- step


@dataclass
class ReportSummary:
    """One written report: its path, size, number of charts, duration."""

    as_of: date
    chemin: str
    octets: int
    graphiques: int
    duree_s: float

    def as_dict(self) -> dict:
        out = asdict(self)
        out["as_of"] = self.as_of.isoformat()
        return out


def pipeline_versions() -> dict[str, str]:
    """Versions of the pipeline and the libraries its numbers depend on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("ru-ij", "duckdb", "polars", "scikit-learn", "matplotlib"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def report_path(paths: DataPaths, as_of: date) -> Path:
    return paths.rapports / f"rapport_{as_of:%Y%m%d}.html"


def report_at(paths: DataPaths, as_of: date | None = None) -> ReportSummary:
    """Write ``rapports/rapport_<AAAAMMJJ>.html`` for D (default: the latest indicators)."""
    from flows.console import progress
    from flows.warehouse import warehouse

    start = time.perf_counter()
    with warehouse(paths, read_only=True) as con:
        if as_of is None:
            if "indicateurs_f1" not in _table_names(con):
                raise ReportError("aucun indicateur calculé : lancez d'abord `ru indicators`.")
            [(as_of,)] = con.execute("select max(as_of) from indicateurs_pdp").fetchall()
            if as_of is None:
                raise ReportError("aucun indicateur calculé : lancez d'abord `ru indicators`.")
        data = read_report_data(con, as_of, paths.modeles)
    data.versions = pipeline_versions()
    with progress(f"Rapport au {fr_date(as_of)}"):
        text = render_report(data)
    target = report_path(paths, as_of)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".html.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    return ReportSummary(
        as_of=as_of,
        chemin=str(target),
        octets=target.stat().st_size,
        graphiques=text.count('<figure class="graphique">'),
        duree_s=round(time.perf_counter() - start, 3),
    )


def report(
    data: DataOption = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Date d'arrêté AAAA-MM-JJ (défaut : dernière date des indicateurs).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Écrit le rapport HTML de pilotage (rapports/rapport_AAAAMMJJ.html)."""
    from flows.console import out
    from flows.settings import resolve_data_dir
    from flows.warehouse import WarehouseError

    try:
        d = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        fail(f"date invalide pour --as-of : « {as_of} » (attendu AAAA-MM-JJ)")
    try:
        summary = report_at(resolve_data_dir(data), d)
    except (ReportError, WarehouseError) as exc:
        fail(str(exc))
    out.print(f"Rapport écrit : {summary.chemin} ({summary.graphiques} graphiques)")
