//! Domain types and rules of the EHR: identifiers, clinical records, enumerations. No I/O, no SQL, no MCP.

pub mod access;
pub mod audit;
pub mod clinical;
pub mod error;
pub mod ids;
pub mod origin;
pub mod text;
pub mod time;
pub mod user;

pub use error::DomainError;
