-- int_arrets: every arrêt built from the in-scope lines visible at $as_of (no window yet).
-- One row per arret_id, with the spec §2 fields that depend on the arrêt's own lines only
-- (dates are DATE, amounts in euros, counts in days):
--   debut_arret, fin_prescrite, dernier_jour_paye, jours_ij, montant_ij, nb_prolongations,
--   prescripteur_initial and its PSP_SPE_COD, prolongation_autre_prescripteur, tpt_en_cours,
--   debut_tpt (first EXE_SOI_DTD of the trailing unbroken run of paid TPT lines), ald,
--   mtf_cat, and from the latest line: ORG_AFF_COD (-> elsm, drsm through ref_elsm),
--   risque, IJR_EMP_NUM, BSE_REM_PRU, BEN_SEX_COD, BEN_NAI_ANN.
-- "Latest line": paid lines (est_payee) first, then latest EXE_SOI_DTF, latest FLX_DIS_DTD,
-- highest LIG_NUM (numeric order for digit strings: longer first, then text).
with

lignes as (
    select * from int_lignes_arret
),

reference_elsm as (
    select * from ref_elsm
),

ordonnees as (
    select
        *,
        row_number() over recence as rang_recent,
        -- paid non-TPT lines at or after this one: 0 inside the trailing TPT run
        sum(case when est_payee and TPT_IND <> 'O' then 1 else 0 end) over (
            recence rows between unbounded preceding and current row
        ) as cassures_tpt
    from lignes
    window recence as (
        partition by arret_id
        order by est_payee desc, EXE_SOI_DTF desc, FLX_DIS_DTD desc,
            length(LIG_NUM) desc, LIG_NUM desc
    )
),

agregees as (
    select
        arret_id,
        any_value(assure_id) as assure_id,
        any_value(arret_num) as ARR_NUM,
        any_value(ORG_AFF_COD) filter (where rang_recent = 1) as ORG_AFF_COD,
        any_value(risque) filter (where rang_recent = 1) as risque,
        coalesce(min(ARR_DEB_DTE), min(EXE_SOI_DTD)) as debut_arret,
        arg_max(
            PRE_FIN_DTE,
            {'prescription': PRE_PRE_DTD, 'flux': FLX_DIS_DTD, 'n': length(LIG_NUM), 'lig': LIG_NUM}
        ) as fin_prescrite,
        max(EXE_SOI_DTF) filter (where est_payee) as dernier_jour_paye,
        cast(sum(PRS_ACT_NBR) as integer) as jours_ij,
        cast(sum(BSE_REM_MNT) as decimal(14, 2)) as montant_ij,
        cast(count(distinct {'prescription': PRE_PRE_DTD, 'prescripteur': PFS_PRE_NUM})
            filter (where PRE_NAT = 'P') as integer) as nb_prolongations,
        coalesce(
            arg_min(
                {'pre': PFS_PRE_NUM, 'spe': PSP_SPE_COD},
                {'prescription': PRE_PRE_DTD, 'debut': EXE_SOI_DTD, 'flux': FLX_DIS_DTD,
                 'n': length(LIG_NUM), 'lig': LIG_NUM}
            ) filter (where PRE_NAT = 'I'),
            arg_min(
                {'pre': PFS_PRE_NUM, 'spe': PSP_SPE_COD},
                {'prescription': PRE_PRE_DTD, 'debut': EXE_SOI_DTD, 'flux': FLX_DIS_DTD,
                 'n': length(LIG_NUM), 'lig': LIG_NUM}
            )
        ) as initial,
        coalesce(
            list_distinct(list(PFS_PRE_NUM) filter (
                where PRE_NAT = 'P' and PFS_PRE_NUM is distinct from PRS_MTT_NUM
            )),
            []
        ) as prescripteurs_prolongation_hors_mt,
        coalesce(bool_or(TPT_IND = 'O') filter (where rang_recent = 1 and est_payee), false)
            as tpt_en_cours,
        min(EXE_SOI_DTD) filter (where est_payee and TPT_IND = 'O' and cassures_tpt = 0)
            as debut_tpt,
        coalesce(bool_or(ALD_IND = 'O'), false) as ald,
        arg_min(MTF_CAT, rang_recent) filter (where MTF_CAT is not null) as mtf_cat,
        any_value(IJR_EMP_NUM) filter (where rang_recent = 1) as IJR_EMP_NUM,
        any_value(BSE_REM_PRU) filter (where rang_recent = 1) as BSE_REM_PRU,
        any_value(BEN_SEX_COD) filter (where rang_recent = 1) as BEN_SEX_COD,
        any_value(BEN_NAI_ANN) filter (where rang_recent = 1) as BEN_NAI_ANN
    from ordonnees
    group by arret_id
),

prescripteurs_derives as (
    select
        * exclude (initial, prescripteurs_prolongation_hors_mt),
        initial.pre as prescripteur_initial,
        initial.spe as PSP_SPE_COD,
        len(list_filter(
            prescripteurs_prolongation_hors_mt, lambda p: p <> initial.pre
        )) > 0 as prolongation_autre_prescripteur
    from agregees
),

final as (
    select
        a.*,
        r.elsm,
        r.drsm
    from prescripteurs_derives as a
    left join reference_elsm as r
        on a.ORG_AFF_COD = r.code_organisme
)

select * from final
