use std::fmt;

/// What can go wrong in a store, in terms the use cases act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule (enforced by the database) was violated; `field` names the API field.
    #[error("{entity} with this {field} already exists")]
    Duplicate {
        entity: &'static str,
        field: &'static str,
    },
    /// The row is still referenced by others (e.g. a NAS with services).
    #[error("{entity} is still in use by {by}")]
    InUse {
        entity: &'static str,
        by: &'static str,
    },
    /// Optimistic concurrency: the row changed since it was read.
    #[error("{entity} was changed concurrently")]
    Stale { entity: &'static str },
    /// The row does not exist.
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    /// Stored data that does not decode: a bug or a manual edit, never user input.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The database itself failed (connection, I/O, …).
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn corrupt(what: impl fmt::Display) -> Self {
        Self::Corrupt(what.to_string())
    }
}
