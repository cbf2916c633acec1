"""Test support shared by every suite (pytest's `pythonpath` is the repository root, see pyproject.toml).

archives   the test double's release archives: where they are, what they hold, the host's arch name
double     the Ollama test double's HTTP server in this process (fast API-shape tests)
fakes      loopback fakes of the cloud APIs and of Ollama, for the router's fault tests
hosts      test hosts: systemd containers reached over SSH (Molecule, benchmarks, try_in_container)
instances  looking inside a Molecule instance and re-running a role against it (the verifiers)
net        free loopback ports
"""
