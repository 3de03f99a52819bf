"""The gallery: enrolled people, matching, and naming tracks.

Modules
-------
store       SQLite gallery file (people, embeddings, model identity): the public API
schema      the gallery file's tables, metadata, integrity checks and transactions
index       GalleryIndex: all queries against all embeddings in one matrix product
enroll      photo folder -> gallery
photos      choosing/embedding faces in still photos, identify, probe evaluation
identifier  evidence per track -> name / Unknown
pairs       verification pairs: labelling, cosine similarities, pairs CSV files
calibrate   pair statistics, thresholds, ROC AUC, plots
cluster     grouping Unknown faces
bench       query speed

Nothing is imported here, so ``import gallery`` stays light.
"""
