"""Benchmarks: this project vs Agenda 6 on one machine and one local server (`make bench`)."""
