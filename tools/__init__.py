"""Development tooling: the local MongoDB-compatible server and the local stack runner."""
