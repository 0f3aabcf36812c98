"""Running: every child process under one supervisor (jobs, timeouts, crash and hang records,
logs, Ctrl-C), `normbench run`'s plan of processes, output-folder rules, the machine lock,
progress, and reading a crashed or hung process's stacks."""
