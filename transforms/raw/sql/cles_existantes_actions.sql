-- Keys of the chunk (relation _cles) already accepted in actions by earlier files
-- (the view over committed lake files).
select t."ELSM", t."ACT_NUM", t."FLX_DIS_DTD"
from actions as t
where t."FLX_DIS_DTD" in (select distinct "FLX_DIS_DTD" from _cles)
  and exists (
    select 1 from _cles as k
    where k."ELSM" = t."ELSM"
      and k."ACT_NUM" = t."ACT_NUM"
      and k."FLX_DIS_DTD" = t."FLX_DIS_DTD"
  )
