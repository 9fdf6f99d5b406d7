"""Curation stages. Each scores clips in place and rejects those outside its thresholds."""
