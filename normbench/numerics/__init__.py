"""Numerics: the float64 oracle, the one tolerance policy, dtypes and the seeded inputs."""
