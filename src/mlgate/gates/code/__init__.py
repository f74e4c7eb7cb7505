"""Code development gates: code.static (bandit) and code.dependencies (trivy fs + SBOM)."""
