"""Matching: an embedding in, the best enrolled person and their score out (the gallery over FAISS, its index file
and proof, its sync with the store, the one person-score rule)."""
