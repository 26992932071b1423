"""The resource server: see server.py (protocol and scenarios) and content.py (files)."""
