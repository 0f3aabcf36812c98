"""Verification: checks against the oracle, behaviour over calls, metamorphic relations, the
case matrices the suites run, and the known upstream divergences with their bounds."""
