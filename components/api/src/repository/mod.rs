//! Every SQL statement the API runs, in both dialects, one module per table
//! (or aggregate): nothing outside this module writes SQL. Each function
//! takes any [`crate::storage::Database`].

pub mod items;
pub mod login_failures;
pub mod schema;
pub mod sessions;
pub mod users;
