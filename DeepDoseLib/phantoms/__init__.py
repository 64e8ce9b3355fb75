"""Patient-like PET/CT cases (placeholder; filled below)."""
