"""fastbp's regression tooling: ``scripts/perf-compare`` and ``scripts/perf-history``.

suite    finds the asv benchmarks of a checkout and runs one (setup, timed call)
worker   a process that times benchmarks on request, for one commit's fastbp
commits  exports commits into clean folders and starts workers on them
stats    paired ratios and their significance
compare  the perf-compare command; history: the perf-history command
"""
