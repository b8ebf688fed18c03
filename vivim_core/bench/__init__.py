"""Benchmarks behind `vivim-core benchmark`: each suite returns rows (dicts) for a table and the JSON report.

Timings synchronise the device, warm up first and report the median of repeated runs; every report carries
the machine, the software versions, the date and the command line.
"""
