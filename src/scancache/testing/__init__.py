"""Loopback servers for testing scanners without the internet: DNS (dns_server, its records in
dns_zone), OSV and NVD (osv_server, its answers in osv_api) and throwaway redis-server processes,
single (redis_server) or a three-node cluster (redis_cluster); crash_worker is a disk-cache writer to
kill -9 in crash tests. Import the submodule you need."""
