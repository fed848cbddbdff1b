"""The enrollment service's CSV importer: a client of the service's HTTP API.

It shares nothing with the service but the HTTP contract (the batch
endpoints, problem+json, Idempotency-Key), so it installs on its own
(`enrollment-import`, with aiohttp, orjson, yarl and tqdm only) and is also
`python -m service import` where the whole service is installed.
"""
