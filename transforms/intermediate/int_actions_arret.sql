-- int_actions_arret: the actions visible at $as_of matched to arrêts (spec §2).
-- One row per arret_id with at least one matched action:
--   derniere_action_dte  latest ACT_DTE;  action_mc  some action by a médecin conseil;
--   action_pdp           some PDP action (contract/actions.md).
-- Matching: an action whose (assure_id, ARR_NUM) is a numbered arrêt's goes to that arrêt
-- only; any other action (no ARR_NUM, or an ARR_NUM no arrêt carries) goes to every arrêt of
-- the same assuré with ACT_DTE in [debut_arret, fin_prescrite].
with

actions_visibles as (
    select * from stg_actions
),

arrets as (
    select arret_id, assure_id, ARR_NUM, debut_arret, fin_prescrite
    from int_arrets
),

par_numero as (
    select
        a.arret_id,
        act.ELSM,
        act.ACT_NUM,
        act.ACT_DTE,
        act.est_mc,
        act.est_pdp
    from actions_visibles as act
    inner join arrets as a
        on act.assure_id = a.assure_id
        and act.ARR_NUM = a.ARR_NUM
),

sans_numero as (
    select act.*
    from actions_visibles as act
    anti join par_numero as n
        on act.ELSM = n.ELSM
        and act.ACT_NUM = n.ACT_NUM
),

par_date as (
    select
        a.arret_id,
        act.ELSM,
        act.ACT_NUM,
        act.ACT_DTE,
        act.est_mc,
        act.est_pdp
    from sans_numero as act
    inner join arrets as a
        on act.assure_id = a.assure_id
        and act.ACT_DTE between a.debut_arret and a.fin_prescrite
),

rattachees as (
    select * from par_numero
    union all
    select * from par_date
),

final as (
    select
        arret_id,
        max(ACT_DTE) as derniere_action_dte,
        bool_or(est_mc) as action_mc,
        bool_or(est_pdp) as action_pdp
    from rattachees
    group by arret_id
)

select * from final
