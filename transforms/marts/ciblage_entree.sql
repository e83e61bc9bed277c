-- Entrée du ciblage: one row per arrêt to evaluate at $as_of, with every field a catalogue
-- condition may read: the arrêt's columns, the repère of its medical category, its model
-- score and reasons (null when not scored), and its latest effective routing before $as_of.
-- Arrêts evaluated: those en cours, and those whose prescription still runs at $as_of but
-- whose assuré has died (not en cours by definition): they are reported with the exclusion
-- `deces`, their duree_jours being what it would be had the arrêt gone on.
with

arrets_en_cours as (
    select * replace (
        coalesce(duree_jours, cast($as_of - debut_arret + 1 as integer)) as duree_jours
    )
    from arrets
    where as_of = $as_of and (en_cours or (deces and fin_prescrite >= $as_of))
),

routages as (
    select arret_id, max(as_of) as derniere_routage_dte
    from routage
    where statut = 'affecte' and as_of < $as_of
    group by arret_id
),

final as (
    select
        a.*,
        r.repere_jours,
        s.score,
        s.raisons,
        s.raisons_medicales,
        ro.derniere_routage_dte,
        cast($as_of - ro.derniere_routage_dte as integer) as jours_depuis_routage
    from arrets_en_cours as a
    left join reperes as r on r.mtf_cat = a.mtf_cat
    left join scores as s on s.arret_id = a.arret_id
    left join routages as ro on ro.arret_id = a.arret_id
)

select * from final
