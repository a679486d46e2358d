"""Benchmarks (`make bench`): measurements, not tests."""
