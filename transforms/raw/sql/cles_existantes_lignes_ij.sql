-- Keys of the chunk (relation _cles) already accepted in lignes_ij by earlier files (the
-- view over committed lake files). The FLX_DIS_DTD filter prunes other extractions.
select t."ORG_AFF_COD", t."LIG_NUM", t."FLX_DIS_DTD"
from lignes_ij as t
where t."FLX_DIS_DTD" in (select distinct "FLX_DIS_DTD" from _cles)
  and exists (
    select 1 from _cles as k
    where k."ORG_AFF_COD" = t."ORG_AFF_COD"
      and k."LIG_NUM" = t."LIG_NUM"
      and k."FLX_DIS_DTD" = t."FLX_DIS_DTD"
  )
