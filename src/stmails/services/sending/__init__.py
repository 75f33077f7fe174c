"""Sending mail: templating, message building, the SMTP pool, campaigns and transactional mail."""
