-- The identity store: the only table with clear NIRs (one row per assure_id).
create table if not exists identite (
  assure_id VARCHAR NOT NULL,
  "BEN_NIR" VARCHAR NOT NULL,
  "BEN_RNG_GEM" SMALLINT NOT NULL,
  premiere_vue DATE NOT NULL
)
