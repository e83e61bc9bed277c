-- indicateurs_pdp: PDP coverage per ELSM at $as_of (spec §7).
-- One row per elsm having at least one arrêt en cours at $as_of with
-- jours_ij ≥ $seuil_jours_ij (14 months of IJ): how many, and how many of them already had
-- a PDP action (arrets.action_pdp, contract/actions.md's definition).
-- Parameters: $as_of, $seuil_jours_ij.

with

arrets_longs as (
    select elsm, coalesce(action_pdp, false) as action_pdp
    from arrets
    where as_of = $as_of and en_cours and jours_ij >= $seuil_jours_ij
),

final as (
    select
        $as_of::date as as_of,
        elsm,
        count(*) as arrets_longs,
        count(*) filter (where action_pdp) as arrets_avec_pdp,
        count(*) filter (where action_pdp) / count(*) as taux
    from arrets_longs
    group by elsm
)

select * from final
order by elsm
