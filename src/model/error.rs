//! Why the values of a model file cannot be used: typed, so that callers (and tests) can
//! tell the cases apart; the CLI prints them with the file's name.

/// A problem in the values of a model file (forest, desert, other classes, scheme,
/// restoration catalogue, pool table).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// A number outside its allowed range.
    #[error("{item}: {field} = {value} must be {rule}")]
    OutOfRange {
        /// The entry (e.g. "forest type 'spruce'").
        item: String,
        /// The key of the value.
        field: String,
        /// The value found.
        value: f64,
        /// The rule it breaks (e.g. "finite and ≥ 0").
        rule: &'static str,
    },
    /// Two entries with the same name or code.
    #[error("{what} {key} defined twice")]
    Duplicate {
        /// What kind of entry ("forest type name", "desert subtype code", …).
        what: &'static str,
        /// The repeated name or code.
        key: String,
    },
    /// A reference to something that is not defined.
    #[error("{item}: {what} '{name}' is not defined")]
    Undefined {
        /// The entry holding the reference.
        item: String,
        /// What is referred to ("forest type", "desert subtype", "lucode", …).
        what: &'static str,
        /// The name or code referred to.
        name: String,
    },
    /// Entries that do not fit together (e.g. a fallback age above the plausible maximum).
    #[error("{item}: {message}")]
    Inconsistent {
        /// The entry.
        item: String,
        /// What does not fit.
        message: String,
    },
}

impl ModelError {
    /// A value of `item` that breaks `rule`.
    pub fn range(
        item: impl Into<String>,
        field: impl Into<String>,
        value: f64,
        rule: &'static str,
    ) -> Self {
        ModelError::OutOfRange {
            item: item.into(),
            field: field.into(),
            value,
            rule,
        }
    }

    /// A reference of `item` to an undefined `what` called `name`.
    pub fn undefined(item: impl Into<String>, what: &'static str, name: impl ToString) -> Self {
        ModelError::Undefined {
            item: item.into(),
            what,
            name: name.to_string(),
        }
    }

    /// Entries of `item` that do not fit together.
    pub fn inconsistent(item: impl Into<String>, message: impl Into<String>) -> Self {
        ModelError::Inconsistent {
            item: item.into(),
            message: message.into(),
        }
    }

    /// The same problem, inside `outer` (e.g. a curve inside a forest type).
    pub fn within(self, outer: &str) -> Self {
        let nest = |item: String| format!("{outer}: {item}");
        match self {
            ModelError::OutOfRange {
                item,
                field,
                value,
                rule,
            } => ModelError::OutOfRange {
                item: nest(item),
                field,
                value,
                rule,
            },
            ModelError::Undefined { item, what, name } => ModelError::Undefined {
                item: nest(item),
                what,
                name,
            },
            ModelError::Inconsistent { item, message } => ModelError::Inconsistent {
                item: nest(item),
                message,
            },
            d @ ModelError::Duplicate { .. } => d,
        }
    }
}
