"""DNSCache: record-TTL-aware caching resolver over the cache core."""
