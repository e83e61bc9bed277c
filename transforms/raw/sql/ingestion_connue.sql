-- The ingestion of a file with these bytes, if any ($sha256).
select fichier, statut, debut
from ingestions
where ingestion_id = $sha256
