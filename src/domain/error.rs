//! The domain's one error type: a value that breaks a rule, naming the field and the rule.

/// A value was rejected by a domain rule. `field` names the input, `rule` says what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {rule}")]
pub struct DomainError {
    pub field: String,
    pub rule: String,
}

impl DomainError {
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule: rule.into(),
        }
    }
}
