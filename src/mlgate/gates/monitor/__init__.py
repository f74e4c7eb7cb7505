"""Monitoring and response: monitor.drift, monitor.confidence, monitor.queries, incident.respond."""
