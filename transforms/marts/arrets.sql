-- arrets: the arrêts of the lookback window at $as_of with their targeting features.
-- One row per (as_of, arret_id). An arrêt is in the window when its prescribed end or its
-- last paid day is on or after $as_of - $fenetre_historique_jours. New columns (spec §2):
--   en_cours      fin_prescrite >= $as_of and the assuré is not deceased
--   duree_jours   $as_of - debut_arret + 1 (days), null when not en cours
--   duree_tpt_jours  $as_of - debut_tpt + 1 (days), null when not tpt_en_cours
--   age           year($as_of) - BEN_NAI_ANN
--   prescripteur_atypique, ratio_pairs_prescripteur  from prescripteurs (initial prescriber)
--   jours_depuis_derniere_action  $as_of - derniere_action_dte (days)
--   action_mc, action_pdp  false when no action matched the arrêt
with

arrets_construits as (
    select * from int_arrets
),

assures as (
    select * from int_assures
),

actions_arret as (
    select * from int_actions_arret
),

prescripteurs_au_jour as (
    select PFS_PRE_NUM, atypique, ratio_pairs from prescripteurs
),

dans_la_fenetre as (
    select *
    from arrets_construits
    where greatest(fin_prescrite, dernier_jour_paye) >= $as_of - $fenetre_historique_jours
),

enrichis as (
    select
        a.*,
        s.ij_3ans,
        s.deces,
        s.nb_arrets_12m,
        s.nb_arrets_courts_6m,
        act.derniere_action_dte,
        act.action_mc,
        act.action_pdp,
        p.atypique,
        p.ratio_pairs
    from dans_la_fenetre as a
    left join assures as s using (assure_id)
    left join actions_arret as act using (arret_id)
    left join prescripteurs_au_jour as p
        on a.prescripteur_initial = p.PFS_PRE_NUM
),

final as (
    select
        cast($as_of as date) as as_of,
        arret_id,
        assure_id,
        ORG_AFF_COD,
        elsm,
        drsm,
        ARR_NUM,
        risque,
        debut_arret,
        fin_prescrite,
        dernier_jour_paye,
        jours_ij,
        montant_ij,
        fin_prescrite >= $as_of and not deces as en_cours,
        case
            when fin_prescrite >= $as_of and not deces
                then cast($as_of - debut_arret + 1 as integer)
        end as duree_jours,
        nb_prolongations,
        prescripteur_initial,
        PSP_SPE_COD,
        coalesce(atypique, false) as prescripteur_atypique,
        ratio_pairs as ratio_pairs_prescripteur,
        prolongation_autre_prescripteur,
        tpt_en_cours,
        case when tpt_en_cours then cast($as_of - debut_tpt + 1 as integer) end
            as duree_tpt_jours,
        ald,
        mtf_cat,
        deces,
        IJR_EMP_NUM,
        BSE_REM_PRU,
        BEN_SEX_COD as sexe,
        cast(year(cast($as_of as date)) - BEN_NAI_ANN as smallint) as age,
        ij_3ans,
        nb_arrets_12m,
        nb_arrets_courts_6m,
        derniere_action_dte,
        cast($as_of - derniere_action_dte as integer) as jours_depuis_derniere_action,
        coalesce(action_mc, false) as action_mc,
        coalesce(action_pdp, false) as action_pdp
    from enrichis
)

select * from final
