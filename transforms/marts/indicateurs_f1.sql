-- indicateurs_f1: F1 per ELSM and month of routing, as seen at $as_of (spec §7).
-- One row per (elsm, mois). A dossier routed to a queue (statut 'affecte', not backlog) by
-- the run of date D counts in the numerator when an action effective on the same arrêt has
-- ACT_DTE in [D, D + $fenetre_action_jours]. The month stays provisional until its last day
-- + $delai_provisoire_jours: actions may still arrive for its last dossiers.
--
-- Matching an action to the dossier (first that applies, all unioned):
--   1. the action carries the dossier's DOSSIER_ID;
--   2. the action's (assure_id, ARR_NUM) is the arrêt's: it goes to that arrêt only;
--   3. any other action (no ARR_NUM, or an ARR_NUM no arrêt carries) goes to the arrêts of
--      the same assuré with ACT_DTE within [debut_arret, fin_prescrite], as known at D.
-- Rules 2–3 are spec §2's matching, exactly as int_actions_arret.sql does it for
-- arrets.action_*; rule 1 also catches an answer recorded against the dossier itself.
-- Parameters: $as_of, $fenetre_action_jours, $delai_provisoire_jours, $historique_mois.

with

routage_visible as (
    select dossier_id, as_of, elsm, arret_id, assure_id, statut
    from routage
    where as_of <= $as_of
),

arrets_a_date as (
    select arret_id, assure_id, ARR_NUM, debut_arret, fin_prescrite
    from arrets
    where as_of = $as_of
),

-- include: actions_des_arrets

dossiers_routes as (
    -- one row per dossier routed to a queue, at its first routing
    select dossier_id, elsm, arret_id, assure_id, min(as_of) as date_routage
    from routage_visible
    where statut = 'affecte'
    group by dossier_id, elsm, arret_id, assure_id
),

dossiers_du_mois as (
    select *, date_trunc('month', date_routage)::date as mois
    from dossiers_routes
    where date_trunc('month', date_routage)::date
          >= (date_trunc('month', $as_of::date) - to_months($historique_mois - 1))::date
),

actions_des_dossiers as (
    select d.dossier_id, a.ACT_DTE
    from dossiers_du_mois as d
    inner join actions_effectives as a on a.DOSSIER_ID = d.dossier_id

    union all

    select d.dossier_id, m.ACT_DTE
    from dossiers_du_mois as d
    inner join (
        select arret_id, ACT_DTE from actions_par_numero
        union all
        select arret_id, ACT_DTE from actions_par_date
    ) as m on m.arret_id = d.arret_id
),

dossiers_avec_action as (
    select distinct d.dossier_id
    from dossiers_du_mois as d
    inner join actions_des_dossiers as a on a.dossier_id = d.dossier_id
    where a.ACT_DTE between d.date_routage and d.date_routage + $fenetre_action_jours::integer
),

final as (
    select
        $as_of::date as as_of,
        d.elsm,
        d.mois,
        count(*) as dossiers_routes,
        count(x.dossier_id) as dossiers_avec_action,
        count(x.dossier_id) / count(*) as taux,
        $as_of::date < last_day(d.mois) + $delai_provisoire_jours::integer as provisoire
    from dossiers_du_mois as d
    left join dossiers_avec_action as x on x.dossier_id = d.dossier_id
    group by d.elsm, d.mois
)

select * from final
order by elsm, mois
