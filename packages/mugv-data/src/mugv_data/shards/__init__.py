"""WebDataset tar shards: the atomic writer, raw clip shards and latent shards."""
