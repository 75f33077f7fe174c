"""Deliverability alerts: the watcher that judges campaigns while they send, the alerts it
stores, and their delivery (see docs/deliverability.md)."""
