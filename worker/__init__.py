"""The cronjobs worker daemon: claims due runs with leases and executes their handlers."""
