"""Prescribers at D (spec §2, last paragraph): patients, days per patient, peer median.

Peers share the specialty and the DRSM and have at least 20 patients. D = 31/03/2026.
"""

from __future__ import annotations

from test_arrets import REF_ELSM, D, j, ligne, params, warehouse

from transforms.runner import arrets_at


def _arrets_of(prescripteur: str, patients: int, fin: str, *, spe: int = 1, **values) -> list:
    """One arrêt (01/02/2026 .. fin) per patient, initially prescribed by ``prescripteur``."""
    return [
        ligne(
            "01/02/2026",
            fin,
            assure_id=f"{prescripteur}-{i}",
            ARR_NUM="1",
            PFS_PRE_NUM=prescripteur,
            PSP_SPE_COD=spe,
            **values,
        )
        for i in range(patients)
    ]


def _build(lignes):
    con = warehouse(lignes)
    with arrets_at(con, params(), REF_ELSM) as result:
        prescripteurs = {r["PFS_PRE_NUM"]: r for r in result.prescripteurs.pl().to_dicts()}
        arrets = result.arrets.pl().to_dicts()
    return prescripteurs, arrets


def test_twenty_patients_at_twice_the_peer_median_is_atypique_nineteen_is_not():
    lignes = [
        *_arrets_of("PA", 20, "10/02/2026"),  # 10 days per patient
        *_arrets_of("PB", 20, "10/02/2026"),
        *_arrets_of("PC", 20, "10/02/2026"),
        *_arrets_of("P20", 20, "20/02/2026"),  # 20 days per patient
        *_arrets_of("P19", 19, "20/02/2026"),  # 20 days per patient, one patient short
    ]
    prescripteurs, arrets = _build(lignes)
    # peers with >= 20 patients: PA, PB, PC (10) and P20 (20): median 10
    p20, p19, pa = prescripteurs["P20"], prescripteurs["P19"], prescripteurs["PA"]
    assert (p20["patients"], p20["jours_ij"], p20["jours_par_patient"]) == (20, 400, 20.0)
    assert (p20["mediane_pairs"], p20["ratio_pairs"], p20["atypique"]) == (10.0, 2.0, True)
    assert (p19["patients"], p19["jours_par_patient"]) == (19, 20.0)
    assert (p19["mediane_pairs"], p19["ratio_pairs"], p19["atypique"]) == (10.0, 2.0, False)
    assert (pa["ratio_pairs"], pa["atypique"]) == (1.0, False)
    assert (p20["PSP_SPE_COD"], p20["drsm"]) == (1, "Occitanie")
    flags = {(a["prescripteur_initial"], a["prescripteur_atypique"]) for a in arrets}
    assert flags == {("PA", False), ("PB", False), ("PC", False), ("P20", True), ("P19", False)}
    assert {
        a["ratio_pairs_prescripteur"] for a in arrets if a["prescripteur_initial"] == "P20"
    } == {2.0}


def test_patients_are_distinct_and_only_recent_maladie_arrets_count():
    lignes = [
        ligne(
            "01/02/2026", "10/02/2026", assure_id="X", ARR_NUM="1", PFS_PRE_NUM="PD", PSP_SPE_COD=5
        ),
        ligne(
            "01/03/2026", "10/03/2026", assure_id="X", ARR_NUM="2", PFS_PRE_NUM="PD", PSP_SPE_COD=5
        ),
        # AT/MP arrêt: not counted
        ligne(
            "01/03/2026",
            "10/03/2026",
            assure_id="Y",
            ARR_NUM="3",
            PFS_PRE_NUM="PD",
            RGO_ASU_NAT=40,
            PSP_SPE_COD=5,
        ),
        # started 30/03/2025 = D - 366: outside the 365-day window
        ligne(
            "30/03/2025", "10/04/2025", assure_id="Z", ARR_NUM="4", PFS_PRE_NUM="PD", PSP_SPE_COD=5
        ),
    ]
    prescripteurs, _ = _build(lignes)
    pd = prescripteurs["PD"]
    assert (pd["patients"], pd["jours_ij"], pd["jours_par_patient"]) == (1, 20, 20.0)
    # fewer than 20 patients: no peer group at all, so no median, no ratio
    assert (pd["mediane_pairs"], pd["ratio_pairs"], pd["atypique"]) == (None, None, False)
    assert set(prescripteurs) == {"PD"}


def test_peers_are_per_specialty_and_drsm():
    lignes = [
        *_arrets_of("PA", 20, "10/02/2026"),
        *_arrets_of("PB", 20, "20/02/2026"),
        # same specialty, other DRSM (caisse 641): its own peer group
        *_arrets_of("PN", 20, "28/02/2026", ORG_AFF_COD="641"),
        # other specialty: its own peer group
        *_arrets_of("PS", 20, "15/02/2026", spe=33),
    ]
    prescripteurs, _ = _build(lignes)
    assert prescripteurs["PA"]["mediane_pairs"] == 15.0  # median of 10 and 20
    assert prescripteurs["PB"]["ratio_pairs"] == 20 / 15
    assert (prescripteurs["PN"]["drsm"], prescripteurs["PN"]["ratio_pairs"]) == (
        "Nouvelle-Aquitaine",
        1.0,
    )
    assert (prescripteurs["PS"]["mediane_pairs"], prescripteurs["PS"]["ratio_pairs"]) == (15.0, 1.0)
    assert j("31/03/2026") == D
