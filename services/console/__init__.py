"""The web console: static pages and the read APIs they use, mounted into the audit service."""
