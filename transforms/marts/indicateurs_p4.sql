-- indicateurs_p4: P4 per ELSM and month of first action, as seen at $as_of (spec §7).
-- One row per (elsm, mois). Denominator: MAL/ATMP arrêts known at $as_of whose first action
-- effective falls in month M. Matching as int_actions_arret.sql (spec §2): an action whose
-- (assure_id, ARR_NUM) is a numbered arrêt's goes to that arrêt only; any other goes to the
-- arrêts of the same assuré with ACT_DTE within [debut_arret, fin_prescrite]. Numerator: those whose arrêt ended within
-- $fenetre_reprise_jours days after that action: no day paid (dernier_jour_paye) and no
-- prescription running (fin_prescrite) beyond action date + $fenetre_reprise_jours.
-- Only months M ≤ month($as_of) − $decalage_mois are published (steering lag).
-- Parameters: $as_of, $fenetre_reprise_jours, $decalage_mois, $historique_mois.

with

arrets_a_date as (
    select arret_id, assure_id, elsm, ARR_NUM, risque, debut_arret, fin_prescrite,
        dernier_jour_paye
    from arrets
    where as_of = $as_of and risque in ('MAL', 'ATMP')
),

-- include: actions_des_arrets

actions_des_arrets as (
    select arret_id, ACT_DTE from actions_par_numero
    union all
    select arret_id, ACT_DTE from actions_par_date
),

premieres_actions as (
    select arret_id, min(ACT_DTE) as premiere_action
    from actions_des_arrets
    group by arret_id
),

arrets_suivis as (
    select
        ar.elsm,
        date_trunc('month', p.premiere_action)::date as mois,
        coalesce(ar.dernier_jour_paye <= p.premiere_action + $fenetre_reprise_jours::integer, true)
        and coalesce(ar.fin_prescrite <= p.premiere_action + $fenetre_reprise_jours::integer, true)
            as termine
    from premieres_actions as p
    inner join arrets_a_date as ar on ar.arret_id = p.arret_id
),

mois_publies as (
    select *
    from arrets_suivis
    where mois <= (date_trunc('month', $as_of::date) - to_months($decalage_mois))::date
      and mois >= (
          date_trunc('month', $as_of::date) - to_months($decalage_mois + $historique_mois - 1)
      )::date
),

final as (
    select
        $as_of::date as as_of,
        elsm,
        mois,
        count(*) as arrets_avec_action,
        count(*) filter (where termine) as arrets_termines,
        count(*) filter (where termine) / count(*) as taux
    from mois_publies
    group by elsm, mois
)

select * from final
order by elsm, mois
