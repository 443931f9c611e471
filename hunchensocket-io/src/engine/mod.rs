//! Engine.IO v4: sessions, transports, heartbeat, upgrade.
pub mod packet;
