"""WebRTC calls: SDP endpoints, peers hosting realtime sessions, the avatar video."""
