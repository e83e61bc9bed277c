"""The model card (``carte_modele.md``): what the model predicts, on what data, how well
against the baseline, and its limits — generated from the metadata, in French."""

from __future__ import annotations

from models.features import FEATURES, phrase

_METRICS = (
    ("roc_auc", "AUC ROC", "{:.3f}"),
    ("average_precision", "Précision moyenne", "{:.3f}"),
    ("brier", "Score de Brier (plus bas = mieux)", "{:.4f}"),
    ("lift_top10", "Lift des 10 % les mieux classés", "{:.2f}"),
)


def _fmt(value, pattern: str) -> str:
    if value is None or value != value:  # NaN
        return "—"
    return pattern.format(value).replace(".", ",")


def _dates(dates: list[str]) -> str:
    if not dates:
        return "aucune"
    if len(dates) <= 4:
        return ", ".join(dates)
    return f"{len(dates)} dates, du {dates[0]} au {dates[-1]}"


def model_card(metadata: dict) -> str:
    """The Markdown text of the model card of ``metadata``."""
    p = metadata["parametres"]
    m = metadata["metriques"]["modele"]
    b = metadata["metriques"]["reference_duree"]
    lignes = metadata["lignes"]
    promo = metadata["promotion"]
    versions = ", ".join(f"{k} {v}" for k, v in metadata["versions"].items())
    rows = "\n".join(
        f"| {label} | {_fmt(m[key], pat)} | {_fmt(b[key], pat)} |" for key, label, pat in _METRICS
    )
    features = "\n".join(
        f"- `{f.name}` ({'catégorielle' if f.kind == 'cat' else 'numérique'}"
        f"{', donnée médicale' if f.medical else ''}) : type {metadata['features'][f.name]}"
        for f in FEATURES
    )
    example = ", ".join(
        f"« {phrase(n, v)} »"
        for n, v in (
            ("nb_prolongations", 3),
            ("mtf_cat", "PSY"),
            ("prescripteur_atypique", 1),
            ("age", 52),
        )
    )
    statut = "**promu**" if promo["promu"] else "**non promu**"
    conserve = ""
    if not promo["promu"]:
        previous = promo.get("modele_promu_conserve")
        conserve = (
            f" Le modèle promu reste la version {previous}."
            if previous
            else " Aucun modèle n'est promu : le ciblage tourne sur les seules règles (RU01 non évalué)."
        )
    return f"""# Carte du modèle de chronicité — version {metadata["version"]}

Générée par `ru train` le {metadata["cree_le"]} (date d'arrêté d'entraînement D = {metadata["as_of"]}).

## Ce qu'il prédit

La probabilité qu'un arrêt maladie (`MAL`) en cours devienne **long** : qu'il atteigne
{p["seuil_chronique_jours"]} jours. Le score (0 à 1, probabilité calibrée) sert au code RU01
(arrêts débutants de {p["duree_min"]} à 60 jours, score ≥ 0,5) et à ordonner les dossiers dans
les files. Chaque arrêt scoré reçoit jusqu'à trois raisons : les caractéristiques qui élèvent le
plus son score par rapport à un arrêt ordinaire (par exemple {example}). Les raisons tirées de
données médicales (motif, ALD, TPT) sont séparées (`raisons_medicales`) et réservées aux files
ISM et médecin conseil.

## Sur quelles données

- Photographies des arrêts à des dates passées S, tous les {p["pas_snapshots_jours"]} jours,
  calculées par le même code que `ru build` (rien de postérieur à S) : une ligne par arrêt
  maladie en cours à S dont la durée est comprise entre {p["duree_min"]} et {p["duree_max"]} jours.
- Étiquette « chronique » lue dans les arrêts à D, seulement quand elle est acquise à D
  (S + ({p["seuil_chronique_jours"]} − durée) ≤ D) : rien de postérieur à D.
- Entraînement : {_dates(metadata["dates_entrainement"])} — {lignes["entrainement"]} lignes,
  {_fmt(lignes["taux_chronique_entrainement"] * 100, "{:.1f}")} % chroniques.
- Validation (les dates les plus récentes, jamais un tirage au hasard) :
  {_dates(metadata["dates_validation"])} — {lignes["validation"]} lignes,
  {_fmt(lignes["taux_chronique_validation"] * 100, "{:.1f}")} % chroniques. Les lignes
  d'entraînement dont l'issue tombe après le début de la validation sont écartées.
- Empreinte des données (sha256) : `{metadata["empreinte_donnees"]}`.

Caractéristiques (lues dans la table `arrets` ; au score, chacune doit exister avec le même
type, sinon le score est refusé) :

{features}

Les actions du service médical ne sont pas des caractéristiques : elles répondent au ciblage
lui-même.

## Résultats sur la validation, contre la référence « durée seule »

| mesure | modèle | référence (classement par durée) |
|---|---|---|
{rows}

Règle de promotion : le modèle doit dépasser la référence d'au moins {_fmt(p["marge_auc"], "{:.3f}")}
en AUC **et** d'au moins {_fmt(p["marge_ap"], "{:.3f}")} en précision moyenne sur la validation.
Verdict : {statut} — {promo["motif"]}.{conserve}

## Estimateur

Pipeline scikit-learn : encodage ordinal des catégories, gradient boosting
(`HistGradientBoostingClassifier` : {", ".join(f"{k} = {v}" for k, v in p["hyperparametres"].items())}),
probabilités calibrées
(`CalibratedClassifierCV`, méthode {p["methode_calibration"]}, {p["plis_calibration"]} plis
regroupés par arrêt). Artefact `model.skops` (skops, sans pickle), jamais réajusté au score.
Versions : {versions}.

## Limites

- Le modèle apprend des arrêts passés de ce territoire : un changement de pratique (nouvelle
  règle, campagne de contrôle, épidémie) le rend moins fiable jusqu'au prochain entraînement.
- Il est entraîné sur des arrêts de {p["duree_min"]} à {p["duree_max"]} jours ; au-delà, le
  score est une extrapolation (RU01 ne l'utilise que jusqu'à 60 jours).
- Le secteur d'activité de l'employeur et la situation sociale ne figurent pas dans les
  données : leur effet n'est pas capté.
- Un score est une aide au tri, pas une décision : il ne remplace pas l'étude du dossier par
  le technicien, le CSAM, l'ISM ou le médecin conseil.
- Les raisons décrivent le modèle, pas la cause médicale de l'arrêt.
"""
