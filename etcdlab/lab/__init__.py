"""The lab: settings, provisioning, the node image, offline assets, Docker or SSH hosts, state."""
