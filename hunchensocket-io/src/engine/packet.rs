//! Engine.IO packets and polling payloads (filled in by the packet work).
