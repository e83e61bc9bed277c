-- int_assures: per-assuré features at $as_of (spec §2, "per assuré").
-- One row per assure_id with an in-scope line visible at $as_of:
--   ij_3ans              Σ PRS_ACT_NBR (days, net of cancellations) over MAL lines without
--                        ALD_IND = 'O' whose EXE_SOI_DTF >= $as_of - $fenetre_ij_3ans_jours
--   deces                some in-scope line of the assuré has DCD_IND = 'O'
--   nb_arrets_12m        MAL arrêts with debut_arret in [$as_of - $fenetre_arrets_12m_jours, $as_of]
--   nb_arrets_courts_6m  MAL arrêts with debut_arret in [$as_of - $fenetre_arrets_courts_jours,
--                        $as_of] whose span max(fin_prescrite, dernier_jour_paye) - debut_arret + 1
--                        is at most $duree_arret_court_max_jours days
with

lignes as (
    select * from int_lignes_arret
),

arrets as (
    select * from int_arrets
),

par_lignes as (
    select
        assure_id,
        cast(coalesce(sum(PRS_ACT_NBR) filter (
            where risque = 'MAL'
                and ALD_IND <> 'O'
                and EXE_SOI_DTF >= $as_of - $fenetre_ij_3ans_jours
        ), 0) as integer) as ij_3ans,
        coalesce(bool_or(DCD_IND = 'O'), false) as deces
    from lignes
    group by assure_id
),

par_arrets as (
    select
        assure_id,
        cast(count(*) filter (
            where risque = 'MAL'
                and debut_arret between $as_of - $fenetre_arrets_12m_jours and $as_of
        ) as integer) as nb_arrets_12m,
        cast(count(*) filter (
            where risque = 'MAL'
                and debut_arret between $as_of - $fenetre_arrets_courts_jours and $as_of
                and greatest(fin_prescrite, dernier_jour_paye) - debut_arret + 1
                    <= $duree_arret_court_max_jours
        ) as integer) as nb_arrets_courts_6m
    from arrets
    group by assure_id
),

final as (
    select
        l.assure_id,
        l.ij_3ans,
        l.deces,
        coalesce(a.nb_arrets_12m, 0) as nb_arrets_12m,
        coalesce(a.nb_arrets_courts_6m, 0) as nb_arrets_courts_6m
    from par_lignes as l
    left join par_arrets as a using (assure_id)
)

select * from final
