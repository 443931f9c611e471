//! Opening handshakes as pure functions. (filled in by the handshake work)
