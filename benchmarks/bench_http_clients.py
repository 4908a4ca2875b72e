"""Benchmark: client CPU per request of asyncio HTTP clients, the GETs of a cold audit.

    .venv/bin/python benchmarks/bench_http_clients.py [--requests 1000] [--concurrency 10,50]
        [--latency 0.05,0] [--data ALL.ZIP]

Each installed client (httpx, httpx with HTTP/2 enabled, aiohttp, pyreqwest) sends the same
`GET /v1/vulns/{id}` requests, N at a time, to the loopback OSV server in another process, and decodes
each JSON body; the script prints the wall time and this process's CPU time per request (user + system),
which is what the client costs whatever the network does. Install the others with
the bench extra (aiohttp, h2; pyreqwest is a dependency).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vuln import FULL_ZIP, SUBSET_ZIP, ServerProcess

Fetch = Callable[[str], Awaitable[Any]]


async def with_httpx(urls: list[str], concurrency: int, http2: bool = False) -> None:
    import httpx

    pool = concurrency * 4 + 4
    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
    async with httpx.AsyncClient(limits=limits, http2=http2) as client:
        await _run(urls, concurrency, lambda u: _httpx_get(client, u))


async def _httpx_get(client: Any, url: str) -> Any:
    response = await client.get(url)
    return response.json()


async def with_aiohttp(urls: list[str], concurrency: int) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def get(url: str) -> Any:
            async with session.get(url) as response:
                return json.loads(await response.read())

        await _run(urls, concurrency, get)


async def with_pyreqwest(urls: list[str], concurrency: int) -> None:
    from pyreqwest.client import ClientBuilder

    async with ClientBuilder().max_connections(concurrency).build() as client:
        async def get(url: str) -> Any:
            async with client.get(url).build_streamed() as response:
                return json.loads(bytes(await response.bytes()))

        await _run(urls, concurrency, get)


async def _run(urls: list[str], concurrency: int, fetch: Fetch) -> None:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(url: str) -> None:
        async with semaphore:
            await fetch(url)

    await asyncio.gather(*(one(u) for u in urls))


CLIENTS: dict[str, Callable[[list[str], int], Awaitable[None]]] = {
    "httpx": with_httpx,
    "httpx+h2": lambda urls, c: with_httpx(urls, c, http2=True),
    "aiohttp": with_aiohttp,
    "pyreqwest": with_pyreqwest,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", default="10,50")
    parser.add_argument("--latency", default="0.05,0")
    parser.add_argument("--data", type=Path)
    args = parser.parse_args()
    from scancache.vulndb.dump import load_records

    source = args.data or (FULL_ZIP if FULL_ZIP.exists() else SUBSET_ZIP)
    ids = sorted(load_records(source))
    for latency in (float(x) for x in args.latency.split(",")):
        with ServerProcess(source, latency) as server:
            urls = [f"{server.url}/v1/vulns/{ids[i % len(ids)]}" for i in range(args.requests)]
            for concurrency in (int(x) for x in args.concurrency.split(",")):
                print(f"\n{args.requests} GETs, {concurrency} at a time, {latency * 1000:.0f} ms round trip")
                for name, client in CLIENTS.items():
                    try:
                        asyncio.run(client(urls[:20], concurrency))  # warm up: imports, first connections
                    except ImportError:
                        print(f"  {name:<10} not installed")
                        continue
                    cpu, wall = time.process_time(), time.perf_counter()
                    asyncio.run(client(urls, concurrency))
                    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                    print(f"  {name:<10} {wall:6.2f} s wall  {cpu / args.requests * 1e6:7.0f} us CPU/request")


if __name__ == "__main__":
    main()
