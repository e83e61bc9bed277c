-- Insert into the identity store the identities (relation _identites) it does not have yet.
insert into identite
select n.assure_id, n."BEN_NIR", n."BEN_RNG_GEM", n.premiere_vue
from (
  select assure_id, any_value("BEN_NIR") as "BEN_NIR", any_value("BEN_RNG_GEM") as "BEN_RNG_GEM",
         min(premiere_vue) as premiere_vue
  from _identites
  group by assure_id
) as n
where not exists (select 1 from identite as i where i.assure_id = n.assure_id)
