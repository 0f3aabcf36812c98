"""Benchmarking: the timing harness and what it controls and records (threads, memory
bandwidth, other load on the machine)."""
