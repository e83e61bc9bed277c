-- int_lignes_arret: each in-scope line visible at $as_of, assigned to its arrêt.
-- One row per (ORG_AFF_COD, LIG_NUM) in scope. New columns:
--   arret_org, arret_num, risque_chaine, debut_chaine
--               the arrêt's key: (assure_id, arret_org, arret_num) for a numbered arrêt,
--               (assure_id, risque_chaine, debut_chaine = its first EXE_SOI_DTD) for a
--               chained one (arret_org, arret_num null); int_arrets hashes it into arret_id;
--   est_payee   the line pays days that are not cancelled: PRS_ACT_NBR > 0 and the net
--               dénombrement of its period (same assuré, same EXE_SOI_DTD and EXE_SOI_DTF,
--               every line of any arrêt) is > 0.
-- Rules (spec §2):
--   * a line with ARR_NUM belongs to the arrêt (assure_id, ORG_AFF_COD, ARR_NUM);
--   * a line without ARR_NUM that pays exactly the period of a numbered line of the same
--     assuré and risk (its cancellation, a second employer's line) joins that arrêt;
--   * the other lines without ARR_NUM are chained per (assuré, risk) in EXE_SOI_DTD order:
--     a line whose start is at most $ecart_max_jours unpaid days after the latest end seen
--     so far (or overlaps it) joins the current chain, otherwise it starts a new arrêt.
with

lignes as (
    select * exclude (en_perimetre, RGO_ASU_NAT, PRS_NAT_REF)
    from stg_lignes_ij
    where en_perimetre
),

numerotees as (
    select * from lignes
    where ARR_NUM is not null
),

sans_numero as (
    select * from lignes
    where ARR_NUM is null
),

periodes_sans_numero as (
    select distinct assure_id, risque, EXE_SOI_DTD, EXE_SOI_DTF
    from sans_numero
),

periodes_numerotees as (
    -- numbered periods that some line without ARR_NUM also pays (few): build side of the
    -- join is the smaller set of periods without a number
    select
        n.assure_id,
        n.risque,
        n.EXE_SOI_DTD,
        n.EXE_SOI_DTF,
        min({'org': n.ORG_AFF_COD, 'num': n.ARR_NUM}) as arret
    from numerotees as n
    semi join periodes_sans_numero as s
        using (assure_id, risque, EXE_SOI_DTD, EXE_SOI_DTF)
    group by all
),

rattachees as (
    select
        s.*,
        p.arret.org as arret_org,
        p.arret.num as arret_num
    from sans_numero as s
    inner join periodes_numerotees as p
        using (assure_id, risque, EXE_SOI_DTD, EXE_SOI_DTF)
),

a_chainer as (
    select s.*
    from sans_numero as s
    anti join periodes_numerotees as p
        using (assure_id, risque, EXE_SOI_DTD, EXE_SOI_DTF)
),

cles_a_chainer as (
    -- the window runs on the few columns it needs; the full lines are joined back after
    select ORG_AFF_COD, LIG_NUM, assure_id, risque, EXE_SOI_DTD, EXE_SOI_DTF, FLX_DIS_DTD
    from a_chainer
),

fin_precedente as (
    select
        *,
        max(EXE_SOI_DTF) over (
            partition by assure_id, risque
            order by EXE_SOI_DTD, EXE_SOI_DTF, FLX_DIS_DTD, ORG_AFF_COD, LIG_NUM
            rows between unbounded preceding and 1 preceding
        ) as fin_max_precedente
    from cles_a_chainer
),

debuts_de_chaine as (
    select
        *,
        fin_max_precedente is null
        or EXE_SOI_DTD - fin_max_precedente - 1 > $ecart_max_jours as nouvelle_chaine
    from fin_precedente
),

debut_des_chaines as (
    -- lines come in EXE_SOI_DTD order, so the start of a line's chain is the latest chain
    -- start seen so far
    select
        ORG_AFF_COD,
        LIG_NUM,
        max(case when nouvelle_chaine then EXE_SOI_DTD end) over (
            partition by assure_id, risque
            order by EXE_SOI_DTD, EXE_SOI_DTF, FLX_DIS_DTD, ORG_AFF_COD, LIG_NUM
            rows between unbounded preceding and current row
        ) as debut_chaine
    from debuts_de_chaine
),

chainees as (
    select
        a.*,
        d.debut_chaine
    from a_chainer as a
    inner join debut_des_chaines as d using (ORG_AFF_COD, LIG_NUM)
),

cles as (
    select
        *,
        cast(null as varchar) as arret_org,
        cast(null as varchar) as arret_num,
        risque as risque_chaine
    from chainees
    union all by name
    select
        *,
        cast(null as varchar) as risque_chaine,
        cast(null as date) as debut_chaine
    from rattachees
    union all by name
    select
        *,
        ORG_AFF_COD as arret_org,
        ARR_NUM as arret_num,
        cast(null as varchar) as risque_chaine,
        cast(null as date) as debut_chaine
    from numerotees
),

periodes_avec_annulation as (
    select distinct assure_id, EXE_SOI_DTD, EXE_SOI_DTF
    from lignes
    where PRS_ACT_NBR < 0
),

periodes_annulees as (
    -- periods whose net dénombrement is not positive: none of their days is paid
    select l.assure_id, l.EXE_SOI_DTD, l.EXE_SOI_DTF
    from lignes as l
    semi join periodes_avec_annulation as a
        using (assure_id, EXE_SOI_DTD, EXE_SOI_DTF)
    group by all
    having sum(l.PRS_ACT_NBR) <= 0
),

final as (
    select
        c.*,
        c.PRS_ACT_NBR > 0 and a.assure_id is null as est_payee
    from cles as c
    left join periodes_annulees as a
        using (assure_id, EXE_SOI_DTD, EXE_SOI_DTF)
)

select * from final
