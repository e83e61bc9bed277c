-- stg_lignes_ij: the IJ payment lines as the pipeline sees them at $as_of.
-- One row per (ORG_AFF_COD, LIG_NUM): its latest version with FLX_DIS_DTD <= $as_of (a
-- correction delivered later is invisible). New columns: risque ('MAL' for RGO_ASU_NAT 10,
-- 'ATMP' for 40, null otherwise) and en_perimetre (spec §1: the line feeds the arrêts).
-- Only the columns the arrêts need are kept; the raw layer keeps the rest.
with

lignes as (
    select * from lignes_ij
),

visibles as (
    select *
    from lignes
    where FLX_DIS_DTD <= $as_of
),

derniere_version as (
    select *
    from visibles
    qualify row_number() over (
        partition by ORG_AFF_COD, LIG_NUM
        order by FLX_DIS_DTD desc
    ) = 1
),

final as (
    select
        LIG_NUM,
        FLX_DIS_DTD,
        ORG_AFF_COD,
        assure_id,
        BEN_SEX_COD,
        BEN_NAI_ANN,
        RGO_ASU_NAT,
        PRS_NAT_REF,
        ARR_NUM,
        ARR_DEB_DTE,
        PRE_NAT,
        PRE_PRE_DTD,
        PRE_FIN_DTE,
        PFS_PRE_NUM,
        PSP_SPE_COD,
        PRS_MTT_NUM,
        IJR_EMP_NUM,
        EXE_SOI_DTD,
        EXE_SOI_DTF,
        PRS_ACT_NBR,
        BSE_REM_PRU,
        BSE_REM_MNT,
        TPT_IND,
        ALD_IND,
        MTF_CAT,
        DCD_IND,
        case RGO_ASU_NAT when 10 then 'MAL' when 40 then 'ATMP' end as risque,
        coalesce(
            list_contains($rgo_asu_nat, RGO_ASU_NAT)
            and list_contains($prs_nat_ref, PRS_NAT_REF)
            and RGO_ASU_NAT in (10, 40),
            false
        ) as en_perimetre
    from derniere_version
)

select * from final
