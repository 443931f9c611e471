//! Opening handshakes as pure functions. (filled in by the handshake work)

pub mod hixie;
pub mod rfc6455;
