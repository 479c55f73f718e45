"""``make bench``: seeds data at scale and measures runql where orchestrators slow down.

Benchmarks are not tests: they print figures (medians after a warm-up, SQL statements per
request, ratios measured in the same process run) and never fail on a timing. The entry
point is ``python -m bench`` (``BENCH_QUICK=1`` for a smoke run under two minutes).
"""
