-- stg_hors_perimetre: lines visible at $as_of that stay in the raw layer (spec §1).
-- One row per (RGO_ASU_NAT, PRS_NAT_REF) outside the scope, with nb_lignes (count of lines,
-- latest versions only). Reported in the build summary, never used to build arrêts.
with

lignes as (
    select * from stg_lignes_ij
),

hors_perimetre as (
    select *
    from lignes
    where not en_perimetre
),

final as (
    select
        RGO_ASU_NAT,
        PRS_NAT_REF,
        count(*) as nb_lignes
    from hors_perimetre
    group by RGO_ASU_NAT, PRS_NAT_REF
)

select * from final
order by RGO_ASU_NAT, PRS_NAT_REF
