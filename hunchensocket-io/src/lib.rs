//! Engine.IO v4 and Socket.IO v5 over hunchensocket-core.
#![forbid(unsafe_code)]

pub mod args;
pub mod engine;
pub mod packet;
