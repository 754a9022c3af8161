use lastmile_domain::validate::ValidationErrors;
use lastmile_store::StoreError;

pub type AppResult<T> = Result<T, AppError>;

/// Why a use case did not happen. The HTTP layer maps each variant to one status and one
/// stable problem type; nothing here is a 500 except a failing database or corrupt data.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Input that breaks a rule; every field at fault is listed. HTTP 422.
    #[error("invalid input: {0}")]
    Validation(ValidationErrors),
    /// The addressed record does not exist. HTTP 404.
    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: String },
    /// The request is valid but the record's state forbids it. HTTP 409.
    #[error("{message}")]
    Conflict {
        /// Stable slug for the problem type (`invalid-state`, `duplicate`, `in-use` …).
        kind: &'static str,
        message: String,
        /// The state the record is in, for state-machine conflicts.
        current_state: Option<String>,
        /// The field whose value collides, for duplicates.
        field: Option<&'static str>,
    },
    /// The store failed. HTTP 503 (backend) or 500 (corrupt data).
    #[error(transparent)]
    Store(StoreError),
    /// Something in the installation is wrong (e.g. the secret key cannot decrypt). HTTP 500.
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(ValidationErrors::single(field, message))
    }

    pub fn not_found(entity: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    pub fn invalid_state(message: impl Into<String>, current: impl ToString) -> Self {
        Self::Conflict {
            kind: "invalid-state",
            message: message.into(),
            current_state: Some(current.to_string()),
            field: None,
        }
    }
}

impl From<ValidationErrors> for AppError {
    fn from(e: ValidationErrors) -> Self {
        Self::Validation(e)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate { entity, field } => Self::Conflict {
                kind: "duplicate",
                message: format!("a {entity} with this {field} already exists"),
                current_state: None,
                field: Some(field),
            },
            StoreError::InUse { entity, by } => Self::Conflict {
                kind: "in-use",
                message: format!("the {entity} is still referenced by {by}"),
                current_state: None,
                field: None,
            },
            StoreError::Stale { entity } => Self::Conflict {
                kind: "concurrent-modification",
                message: format!("the {entity} was changed by another request; retry"),
                current_state: None,
                field: None,
            },
            StoreError::NotFound { entity } => Self::NotFound {
                entity,
                id: String::new(),
            },
            other => Self::Store(other),
        }
    }
}

/// Inputs are bounded, so a money sum overflows only on stored data beyond any real amount:
/// an error of the installation, never a wrapped amount.
impl From<lastmile_domain::billing::account::MoneyOverflow> for AppError {
    fn from(e: lastmile_domain::billing::account::MoneyOverflow) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<crate::secrets::SecretError> for AppError {
    fn from(e: crate::secrets::SecretError) -> Self {
        Self::Internal(e.to_string())
    }
}
