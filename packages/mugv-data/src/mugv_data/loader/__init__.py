"""Training loader over latent shards: bucketed, token-budgeted, exactly resumable."""
