-- Included by indicateurs_f1.sql and indicateurs_p4.sql (flows.indicators.model_sql replaces
-- the line `-- include: actions_des_arrets` with this text): the actions effective at $as_of
-- matched to the including model's CTE `arrets_a_date` (arret_id, assure_id, ARR_NUM,
-- debut_arret, fin_prescrite), spec §2 as int_actions_arret.sql does it for arrets.action_*:
-- an action whose (assure_id, ARR_NUM) is an arrêt's goes to that arrêt only
-- (actions_par_numero); any other goes to the arrêts of the same assuré with ACT_DTE within
-- [debut_arret, fin_prescrite] (actions_par_date). CTEs only, each followed by a comma.

actions_visibles as (
    -- latest version at D of each action
    select *
    from actions
    where FLX_DIS_DTD <= $as_of
    qualify row_number() over (partition by ELSM, ACT_NUM order by FLX_DIS_DTD desc) = 1
),

actions_effectives as (
    select ELSM, ACT_NUM, DOSSIER_ID, assure_id, ARR_NUM, ACT_DTE
    from actions_visibles
    where ACT_DTE <= $as_of
      and (
          (nullif(trim(ACT_RES), '') is not null and ACT_RES <> 'NON_HONORE')
          or ACT_TYP in ('COURRIER_CLOE', 'COURRIER_PDP', 'EMS', 'AVIS_SUR_PIECES')
      )
),

actions_par_numero as (
    select ar.arret_id, a.ELSM, a.ACT_NUM, a.ACT_DTE
    from actions_effectives as a
    inner join arrets_a_date as ar
        on a.assure_id = ar.assure_id and a.ARR_NUM = ar.ARR_NUM
),

actions_sans_numero as (
    select a.*
    from actions_effectives as a
    anti join actions_par_numero as n on a.ELSM = n.ELSM and a.ACT_NUM = n.ACT_NUM
),

actions_par_date as (
    select ar.arret_id, a.ELSM, a.ACT_NUM, a.ACT_DTE
    from actions_sans_numero as a
    inner join arrets_a_date as ar
        on a.assure_id = ar.assure_id
        and a.ACT_DTE between ar.debut_arret and ar.fin_prescrite
),
