"""Running: isolated processes per framework group, the machine lock, progress, and reading a
crashed or hung process's stacks."""
