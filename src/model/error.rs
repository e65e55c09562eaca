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
