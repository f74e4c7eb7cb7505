"""Deployment gates: deploy.config (least-privilege checks over compose and Kubernetes files) and deploy.container."""
