"""Loopback servers for testing scanners without the internet: DNS (dns_server), OSV and NVD
(osv_server) and a throwaway redis-server (redis_server). Import the submodule you need."""
