"""The cronjobs management API (Litestar) that mobile clients call."""
