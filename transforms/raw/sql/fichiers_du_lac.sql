-- Ingested files of a source ($source) whose accepted lines are in the lake: the files the
-- views lignes_ij / actions list. An ingestion is visible once its `ok` row is committed.
select fichier, ingestion_id
from ingestions
where source = $source and statut = 'ok' and lignes_acceptees > 0
order by debut, ingestion_id
