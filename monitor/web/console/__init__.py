"""The web console: server-rendered pages for leaders, informants and analysts."""
