"""Loopback servers for testing scanners without the internet: DNS (dns_server), OSV and NVD
(osv_server) and throwaway redis-server processes, single or a three-node cluster (redis_server).
Import the submodule you need."""
