//! The host's edge, one concern per module: who the client is
//! ([`client`]), how much it may ask ([`rate_limit`]), what browsers are
//! told and refused ([`browser`]), how connections are held
//! ([`listener`]) and how many requests run at once ([`slots`]). [`crate::server`] puts them in order around the
//! components.

pub mod browser;
pub mod client;
pub mod listener;
pub mod rate_limit;
pub mod slots;
