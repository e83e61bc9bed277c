-- volumes: routed dossiers, backlog and capacity per ELSM and ISO week, as seen at $as_of.
-- One row per (elsm, semaine_iso, axe, valeur), axe being 'total' (valeur 'total'),
-- 'code_ru' (primary code) or 'acteur' (queue). For a week:
--   dossiers_affectes   distinct dossiers routed to a queue by the week's runs (≤ $as_of);
--   dossiers_en_attente backlog: dossiers 'non_affecte' in the week's latest run (≤ $as_of);
--                       always 0 on the acteur axis (a dossier in the backlog has no queue);
--   capacite            weekly capacity of the queue (acteur axis) or of the ELSM (total),
--                       from the capacity relation `capacites` (elsm, acteur,
--                       dossiers_par_semaine); null on the code_ru axis;
--   taux_capacite       dossiers_affectes / capacite (null when no capacity).
-- Weeks: the $historique_semaines ISO weeks ending with the week of $as_of.
-- Parameters: $as_of, $historique_semaines.

with

routage_visible as (
    select dossier_id, as_of, semaine_iso, elsm, code_ru, acteur, statut
    from routage
    where as_of <= $as_of
      and date_trunc('week', as_of)::date
          >= (date_trunc('week', $as_of::date) - to_weeks($historique_semaines - 1))::date
),

affectes as (
    -- one row per dossier routed to a queue in the week, at its first routing
    select elsm, semaine_iso, dossier_id, code_ru, acteur
    from routage_visible
    where statut = 'affecte'
    qualify row_number() over (
        partition by elsm, semaine_iso, dossier_id order by as_of
    ) = 1
),

derniers_runs as (
    select elsm, semaine_iso, max(as_of) as dernier_run
    from routage_visible
    group by elsm, semaine_iso
),

en_attente as (
    select r.elsm, r.semaine_iso, r.dossier_id, r.code_ru, r.acteur
    from routage_visible as r
    inner join derniers_runs as d
        on d.elsm = r.elsm and d.semaine_iso = r.semaine_iso and d.dernier_run = r.as_of
    where r.statut = 'non_affecte'
),

semaines as (
    select distinct elsm, semaine_iso from routage_visible
),

capacites_valides as (
    select elsm, acteur, sum(dossiers_par_semaine)::bigint as capacite
    from capacites
    group by elsm, acteur
),

dossiers as (
    select elsm, semaine_iso, code_ru, acteur, 1 as affecte, 0 as attente from affectes
    union all
    select elsm, semaine_iso, code_ru, acteur, 0 as affecte, 1 as attente from en_attente
),

par_code as (
    select
        elsm, semaine_iso, 'code_ru' as axe, code_ru as valeur,
        sum(affecte)::bigint as dossiers_affectes,
        sum(attente)::bigint as dossiers_en_attente,
        null::bigint as capacite
    from dossiers
    group by elsm, semaine_iso, code_ru
),

acteurs_possibles as (
    select s.elsm, s.semaine_iso, c.acteur, c.capacite
    from semaines as s
    inner join capacites_valides as c on c.elsm = s.elsm
),

par_acteur_compte as (
    select elsm, semaine_iso, acteur,
        count(*)::bigint as dossiers_affectes,
        0::bigint as dossiers_en_attente
    from affectes
    group by elsm, semaine_iso, acteur
),

par_acteur as (
    select
        coalesce(n.elsm, p.elsm) as elsm,
        coalesce(n.semaine_iso, p.semaine_iso) as semaine_iso,
        'acteur' as axe,
        coalesce(n.acteur, p.acteur) as valeur,
        coalesce(n.dossiers_affectes, 0)::bigint as dossiers_affectes,
        coalesce(n.dossiers_en_attente, 0)::bigint as dossiers_en_attente,
        p.capacite
    from par_acteur_compte as n
    full outer join acteurs_possibles as p
        on p.elsm = n.elsm and p.semaine_iso = n.semaine_iso and p.acteur = n.acteur
),

totaux as (
    select
        s.elsm, s.semaine_iso, 'total' as axe, 'total' as valeur,
        (select count(*) from affectes as a
            where a.elsm = s.elsm and a.semaine_iso = s.semaine_iso)::bigint
            as dossiers_affectes,
        (select count(*) from en_attente as e
            where e.elsm = s.elsm and e.semaine_iso = s.semaine_iso)::bigint
            as dossiers_en_attente,
        (select sum(c.capacite) from capacites_valides as c where c.elsm = s.elsm)::bigint
            as capacite
    from semaines as s
),

final as (
    select
        $as_of::date as as_of,
        elsm, semaine_iso, axe, valeur, dossiers_affectes, dossiers_en_attente, capacite,
        case when capacite > 0 then dossiers_affectes / capacite end as taux_capacite
    from (
        select * from totaux
        union all
        select * from par_code
        union all
        select * from par_acteur
    )
)

select * from final
order by elsm, semaine_iso, axe, valeur
