//! Pure domain rules of Lastmile. Nothing here performs IO: no database, no network, no clock
//! (callers pass `now`). Everything the use cases decide is decided here, so it can be unit and
//! property tested without a store.

pub mod audit;
pub mod auth;
pub mod billing;
pub mod currency;
pub mod ids;
pub mod job;
pub mod nas;
pub mod plan;
pub mod radius;
pub mod service;
pub mod subscriber;
pub mod timeline;
pub mod validate;

pub use jiff::Timestamp;
pub use uuid::Uuid;
