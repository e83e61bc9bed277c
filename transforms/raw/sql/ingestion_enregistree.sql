-- Record one ingested file (one row of `ingestions`), in the same transaction as its lines.
insert into ingestions (
  ingestion_id, fichier, chemin, source, sha256, taille_octets, encodage,
  lignes_lues, lignes_acceptees, lignes_quarantaine, statut, motif, debut, fin
)
values (
  $ingestion_id, $fichier, $chemin, $source, $ingestion_id, $taille_octets, $encodage,
  $lignes_lues, $lignes_acceptees, $lignes_quarantaine, $statut, $motif, $debut, $fin
)
