//! Code shared by Nexa's API components (auth, users, items). It holds no
//! Spin-specific code, so its rules are tested natively; the components wire
//! them to spin-sdk.

pub mod error;
pub mod jwt;
pub mod price;
pub mod validation;
