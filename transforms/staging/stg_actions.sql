-- stg_actions: the service médical actions as the pipeline sees them at $as_of.
-- One row per (ELSM, ACT_NUM): its latest version with FLX_DIS_DTD <= $as_of, kept when
-- ACT_DTE <= $as_of. New columns (contract/actions.md): est_pdp (a PDP action: COURRIER_PDP,
-- SIGNALEMENT_SSOC, SIGNALEMENT_SST, RDV_LIAISON, or result PDP_ENGAGEE) and est_mc (by a
-- médecin conseil).
with

actions_source as (
    select * from actions
),

visibles as (
    select *
    from actions_source
    where FLX_DIS_DTD <= $as_of
),

derniere_version as (
    select *
    from visibles
    qualify row_number() over (
        partition by ELSM, ACT_NUM
        order by FLX_DIS_DTD desc
    ) = 1
),

passees as (
    select *
    from derniere_version
    where ACT_DTE <= $as_of
),

final as (
    select
        ELSM,
        ACT_NUM,
        assure_id,
        ARR_NUM,
        ACT_DTE,
        ACT_ACTEUR,
        ACT_TYP,
        ACT_RES,
        ACT_ACTEUR = 'MC' as est_mc,
        coalesce(
            ACT_TYP in ('COURRIER_PDP', 'SIGNALEMENT_SSOC', 'SIGNALEMENT_SST', 'RDV_LIAISON')
            or ACT_RES = 'PDP_ENGAGEE',
            false
        ) as est_pdp
    from passees
)

select * from final
