"""Shared parts of the vendor sandboxes: the seeded demo world and the HTTP server kit."""
