-- int_arrets: every arrêt built from the in-scope lines visible at $as_of (no window yet).
-- One row per arrêt key of int_lignes_arret, identified by arret_id (md5 of the key as text:
-- 'N|assure_id|ORG_AFF_COD|ARR_NUM' or 'C|assure_id|risque|first EXE_SOI_DTD'), with the spec §2 fields that depend on the arrêt's own lines only
-- (dates are DATE, amounts in euros, counts in days):
--   debut_arret, fin_prescrite, dernier_jour_paye, jours_ij, montant_ij, nb_prolongations,
--   prescripteur_initial and its PSP_SPE_COD, prolongation_autre_prescripteur, tpt_en_cours,
--   debut_tpt (first EXE_SOI_DTD of the trailing unbroken run of paid TPT lines), ald,
--   mtf_cat, and from the latest line: ORG_AFF_COD (-> elsm, drsm through ref_elsm),
--   risque, IJR_EMP_NUM, BSE_REM_PRU, BEN_SEX_COD, BEN_NAI_ANN.
-- "Latest line": paid lines (est_payee) first, then latest EXE_SOI_DTF, latest FLX_DIS_DTD,
-- highest LIG_NUM (numeric order for digit strings: longer first, then text).
-- Aggregates with struct keys rather than window functions: one hash aggregation per arrêt.
with

lignes as (
    select * from int_lignes_arret
),

reference_elsm as (
    select * from ref_elsm
),

avec_recence as (
    select
        *,
        {
            'payee': est_payee,
            'fin': EXE_SOI_DTF,
            'flux': FLX_DIS_DTD,
            'n': length(LIG_NUM),
            'lig': LIG_NUM
        } as recence,
        {
            'prescription': PRE_PRE_DTD,
            'flux': FLX_DIS_DTD,
            'n': length(LIG_NUM),
            'lig': LIG_NUM
        } as ordre_prescription,
        {
            'prescription': PRE_PRE_DTD,
            'debut': EXE_SOI_DTD,
            'flux': FLX_DIS_DTD,
            'n': length(LIG_NUM),
            'lig': LIG_NUM
        } as anciennete
    from lignes
),

agregees as (
    select
        md5(
            case
                when arret_num is not null
                    then 'N|' || assure_id || '|' || arret_org || '|' || arret_num
                else 'C|' || assure_id || '|' || risque_chaine || '|'
                    || strftime(debut_chaine, '%Y-%m-%d')
            end
        ) as arret_id,
        assure_id,
        arret_num as ARR_NUM,
        arg_max(
            {
                'org': ORG_AFF_COD,
                'risque': risque,
                'emp': IJR_EMP_NUM,
                'pru': BSE_REM_PRU,
                'sexe': BEN_SEX_COD,
                'naissance': BEN_NAI_ANN,
                'tpt': est_payee and TPT_IND = 'O'
            },
            recence
        ) as derniere,
        coalesce(min(ARR_DEB_DTE), min(EXE_SOI_DTD)) as debut_arret,
        arg_max(PRE_FIN_DTE, ordre_prescription) as fin_prescrite,
        max(EXE_SOI_DTF) filter (where est_payee) as dernier_jour_paye,
        -- A cancellation whose paid line is not visible (quarantined, awaiting its
        -- correction) would make the sum negative: net days never go below zero.
        greatest(cast(sum(PRS_ACT_NBR) as integer), 0) as jours_ij,
        cast(sum(BSE_REM_MNT) as decimal(14, 2)) as montant_ij,
        cast(count(distinct {'prescription': PRE_PRE_DTD, 'prescripteur': PFS_PRE_NUM})
            filter (where PRE_NAT = 'P') as integer) as nb_prolongations,
        coalesce(
            arg_min({'pre': PFS_PRE_NUM, 'spe': PSP_SPE_COD}, anciennete)
                filter (where PRE_NAT = 'I'),
            arg_min({'pre': PFS_PRE_NUM, 'spe': PSP_SPE_COD}, anciennete)
        ) as initial,
        list(distinct PFS_PRE_NUM) filter (
            where PRE_NAT = 'P' and PFS_PRE_NUM is distinct from PRS_MTT_NUM
        ) as prescripteurs_prolongation_hors_mt,
        max(recence) filter (where est_payee and TPT_IND <> 'O') as derniere_non_tpt,
        list({'recence': recence, 'debut': EXE_SOI_DTD})
            filter (where est_payee and TPT_IND = 'O') as lignes_tpt,
        coalesce(bool_or(ALD_IND = 'O'), false) as ald,
        arg_max(MTF_CAT, recence) filter (where MTF_CAT is not null) as mtf_cat
    from avec_recence
    group by assure_id, arret_org, arret_num, risque_chaine, debut_chaine
),

derivees as (
    select
        arret_id,
        assure_id,
        ARR_NUM,
        derniere.org as ORG_AFF_COD,
        derniere.risque as risque,
        debut_arret,
        fin_prescrite,
        dernier_jour_paye,
        jours_ij,
        montant_ij,
        nb_prolongations,
        initial.pre as prescripteur_initial,
        initial.spe as PSP_SPE_COD,
        coalesce(
            len(list_filter(
                prescripteurs_prolongation_hors_mt, lambda p: p <> initial.pre
            )) > 0,
            false
        ) as prolongation_autre_prescripteur,
        coalesce(derniere.tpt, false) as tpt_en_cours,
        -- the trailing run: paid TPT lines more recent than the latest paid full-time line
        case when derniere.tpt then list_min(list_transform(
            list_filter(
                lignes_tpt,
                lambda l: derniere_non_tpt is null or l.recence > derniere_non_tpt
            ),
            lambda l: l.debut
        )) end as debut_tpt,
        ald,
        mtf_cat,
        derniere.emp as IJR_EMP_NUM,
        derniere.pru as BSE_REM_PRU,
        derniere.sexe as BEN_SEX_COD,
        derniere.naissance as BEN_NAI_ANN
    from agregees
),

final as (
    select
        a.*,
        r.elsm,
        r.drsm
    from derivees as a
    left join reference_elsm as r
        on a.ORG_AFF_COD = r.code_organisme
)

select * from final
