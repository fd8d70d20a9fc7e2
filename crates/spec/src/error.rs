/// Why a tracking call was refused. Every variant names what is wrong in
/// words a client developer can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("body is not valid JSON: {0}")]
    Malformed(String),
    #[error("{what} must be a JSON object")]
    NotAnObject { what: String },
    #[error("`{field}` is required{hint}")]
    Missing { field: String, hint: &'static str },
    #[error("`{field}` {reason}")]
    Invalid { field: String, reason: String },
    #[error("{what} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        what: String,
        size: usize,
        limit: usize,
    },
}

impl SpecError {
    /// The field at fault, when one field is.
    pub fn field(&self) -> Option<&str> {
        match self {
            SpecError::Missing { field, .. } | SpecError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The same error, located inside a batch.
    pub(crate) fn in_batch(self, index: usize) -> SpecError {
        let at = |f: String| {
            let mut s = String::from("batch[");
            s.push_str(&index.to_string());
            s.push_str("].");
            s.push_str(&f);
            s
        };
        match self {
            SpecError::Missing { field, hint } => SpecError::Missing {
                field: at(field),
                hint,
            },
            SpecError::Invalid { field, reason } => SpecError::Invalid {
                field: at(field),
                reason,
            },
            SpecError::NotAnObject { .. } => SpecError::NotAnObject {
                what: at(String::new()).trim_end_matches('.').to_string(),
            },
            SpecError::TooLarge { size, limit, .. } => SpecError::TooLarge {
                what: at(String::new()).trim_end_matches('.').to_string(),
                size,
                limit,
            },
            other => other,
        }
    }
}
