"""VulnerabilityDBCache: cached, batched OSV and NVD queries and an offline OSV mirror."""
