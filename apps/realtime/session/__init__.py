"""The transport-agnostic realtime session (see ``session.RealtimeSession``)."""
