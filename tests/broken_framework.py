"""A framework that is installed but cannot be imported (see crashing_adapters.Unimportable)."""

raise ImportError("libbroken.so: cannot open shared object file (planted by the tests)")
